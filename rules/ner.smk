# rules of the 'ner' section (see docs/DEVELOPING.md): encoder+CRF taggers (baseline, robust,
# ablations), tagging of the clean and perturbed test sets, and the NER result tables.


rule ner_train:
    input:
        unpack(lambda wc: NER.train_inputs(wc.ner_encoder, wc.ner_variant)),
    output:
        model=directory("results/ner/models/{ner_encoder}/{ner_variant}"),
    log:
        "logs/ner_train/{ner_encoder}/{ner_variant}.log",
    benchmark:
        "benchmarks/ner_train/{ner_encoder}/{ner_variant}.tsv"
    # the NER chain (corpus -> taggers -> tables) is the run's longest: start it first
    priority: 10
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    params:
        settings=lambda wc: NER.train_settings(wc.ner_variant),
        dropout_sweep=lambda wc: NER.dropout_sweep(wc.ner_variant),
        labels=NER.labels(),
    script:
        "../workflow/scripts/ner_train.py"


rule ner_predict:
    input:
        **NER.testsets(),
        model="results/ner/models/{ner_encoder}/{ner_variant}",
    output:
        predictions="results/ner/pred/{ner_encoder}/{ner_variant}.jsonl",
    log:
        "logs/ner_predict/{ner_encoder}/{ner_variant}.log",
    benchmark:
        "benchmarks/ner_predict/{ner_encoder}/{ner_variant}.tsv"
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    params:
        testsets=list(NER.testsets()),
        postprocess=NER.postprocess(),
        normalize=lambda wc: NER.method_normalize(wc.ner_variant),
        batch_size=config["ner"]["eval_batch_size"],
        max_rows=config["ner"]["max_test_rows"],
    script:
        "../workflow/scripts/ner_predict.py"


# ner_robustness's "normaliser off" row: the robust tagger on test text that skipped the normaliser
use rule ner_predict as ner_predict_no_normalizer with:
    output:
        predictions="results/ner/pred/{ner_encoder}/{ner_variant}.no-normalizer.jsonl",
    log:
        "logs/ner_predict_no_normalizer/{ner_encoder}/{ner_variant}.log",
    benchmark:
        "benchmarks/ner_predict_no_normalizer/{ner_encoder}/{ner_variant}.tsv"
    params:
        normalize=False,


# an LLM method's LLM as the NER system itself (rows "<LLM> (direct)"; tinysec/ner/direct.py)
rule ner_direct_predict:
    input:
        unpack(lambda wc: NER.direct_inputs(wc.ner_method)),
    output:
        predictions="results/ner/pred/direct/{ner_method}.jsonl",
        stats="results/ner/pred/direct/{ner_method}.stats.json",
    log:
        "logs/ner_direct_predict/{ner_method}.log",
    benchmark:
        "benchmarks/ner_direct_predict/{ner_method}.tsv"
    wildcard_constraints:
        ner_method=one_of(NER.llm_methods()),
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    params:
        llm_entry=lambda wc: NER.method_llm_entry(wc.ner_method),
        types=config["ner_data"]["entity_types"],
        direct=config["ner"]["direct"],
        seed=config["seed"],
        cache="results/cache/ner_llm",
    script:
        "../workflow/scripts/ner_direct_predict.py"


rule ner_prf:
    input:
        predictions=plan.predictions(NER.method_rows() + NER.direct_rows()),
    output:
        table=report(
            "results/tables/ner_prf.csv",
            category="NER study",
            subcategory="Tagging",
            caption="../workflow/report/ner_prf.rst",
        ),
        md="results/tables/ner_prf.md",
        figure=report(
            "results/figures/ner_prf.png",
            category="NER study",
            subcategory="Tagging",
            caption="../workflow/report/ner_prf.rst",
        ),
    log:
        "logs/ner_prf/ner_prf.log",
    benchmark:
        "benchmarks/ner_prf/ner_prf.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        methods=NER.method_rows() + NER.direct_rows(),
        context=NER.caption_context(),
    script:
        "../workflow/scripts/ner_prf.py"


rule ner_counts:
    input:
        predictions=plan.predictions(NER.method_rows() + NER.direct_rows()),
    output:
        table=report(
            "results/tables/ner_counts.csv",
            category="NER study",
            subcategory="Tagging",
            caption="../workflow/report/ner_counts.rst",
        ),
        md="results/tables/ner_counts.md",
        figure=report(
            "results/figures/ner_counts.png",
            category="NER study",
            subcategory="Tagging",
            caption="../workflow/report/ner_counts.rst",
        ),
    log:
        "logs/ner_counts/ner_counts.log",
    benchmark:
        "benchmarks/ner_counts/ner_counts.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        methods=NER.method_rows() + NER.direct_rows(),
        context=NER.caption_context(),
    script:
        "../workflow/scripts/ner_counts.py"


rule ner_robustness:
    input:
        predictions=plan.predictions(NER.robustness_methods()),
    output:
        table=report(
            "results/tables/ner_robustness.csv",
            category="NER study",
            subcategory="Tagging",
            caption="../workflow/report/ner_robustness.rst",
        ),
        md="results/tables/ner_robustness.md",
    log:
        "logs/ner_robustness/ner_robustness.log",
    benchmark:
        "benchmarks/ner_robustness/ner_robustness.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        table="robustness",
        methods=NER.robustness_methods(),
        families=NER_CORPUS.test_families(),
        context=NER.caption_context(),
    script:
        "../workflow/scripts/ner_robustness.py"


use rule ner_robustness as ner_ablation with:
    input:
        predictions=plan.predictions(NER.main_methods(NER.ablation_variants())),
    output:
        table=report(
            "results/tables/ner_ablation.csv",
            category="NER study",
            subcategory="Tagging",
            caption="../workflow/report/ner_ablation.rst",
        ),
        md="results/tables/ner_ablation.md",
    log:
        "logs/ner_ablation/ner_ablation.log",
    benchmark:
        "benchmarks/ner_ablation/ner_ablation.tsv"
    params:
        table="ablation",
        methods=NER.main_methods(NER.ablation_variants()),


use rule ner_robustness as ner_sources with:
    input:
        predictions=plan.predictions(NER.main_methods(["baseline", "robust"])),
    output:
        table=report(
            "results/tables/ner_sources.csv",
            category="NER study",
            subcategory="Tagging",
            caption="../workflow/report/ner_sources.rst",
        ),
        md="results/tables/ner_sources.md",
    log:
        "logs/ner_sources/ner_sources.log",
    benchmark:
        "benchmarks/ner_sources/ner_sources.tsv"
    params:
        table="sources",
        methods=NER.main_methods(["baseline", "robust"]),


# qualitative example: one raw Nmap input (real loopback scan if built) tagged by the baseline and the best method
rule ner_example:
    input:
        **NER.example_inputs(),
    output:
        md=report(
            "results/tables/ner_example.md",
            category="NER study",
            subcategory="Tagging",
            caption="../workflow/report/ner_example.rst",
        ),
        csv="results/tables/ner_example.csv",
    log:
        "logs/ner_example/ner_example.log",
    benchmark:
        "benchmarks/ner_example/ner_example.tsv"
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    params:
        methods=NER.example_methods(),
        example=NER.example_input(),
        types=config["ner_data"]["entity_types"],
        postprocess=NER.postprocess(),
        batch_size=config["ner"]["eval_batch_size"],
        chain=config["ner"]["chain"],
        seed=config["seed"],
        cache="results/cache/ner_llm",
        source=config["ner"]["example_source"],
        context=NER.caption_context(),
    script:
        "../workflow/scripts/ner_example.py"


if section_enabled("ner"):
    register_targets(
        "results/tables/ner_prf.csv",
        "results/tables/ner_prf.md",
        "results/figures/ner_prf.png",
        "results/tables/ner_counts.csv",
        "results/tables/ner_counts.md",
        "results/figures/ner_counts.png",
        "results/tables/ner_robustness.csv",
        "results/tables/ner_robustness.md",
        "results/tables/ner_ablation.csv",
        "results/tables/ner_ablation.md",
        "results/tables/ner_sources.csv",
        "results/tables/ner_sources.md",
        "results/tables/ner_example.md",
        "results/tables/ner_example.csv",
    )


# ---- real-scan evaluation (evaluation only, never training): services started on 127.0.0.1,
# scanned with the real nmap -sV; scheduled by `rule all` only when enabled and nmap is installed.
rule ner_real_scan:
    output:
        records="results/ner/real/records.jsonl",
    log:
        "logs/ner_real_scan/ner_real_scan.log",
    benchmark:
        "benchmarks/ner_real_scan/ner_real_scan.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        nmap=config["ner"]["real_scan"]["nmap"],
        timeout_s=config["ner"]["real_scan"]["timeout_s"],
    script:
        "../workflow/scripts/ner_real_scan.py"


rule ner_real_predict:
    input:
        records=rules.ner_real_scan.output.records,
        model="results/ner/models/{ner_encoder}/{ner_variant}",
    output:
        predictions="results/ner/real/pred/{ner_encoder}/{ner_variant}.jsonl",
    log:
        "logs/ner_real_predict/{ner_encoder}/{ner_variant}.log",
    benchmark:
        "benchmarks/ner_real_predict/{ner_encoder}/{ner_variant}.tsv"
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    params:
        types=config["ner_data"]["entity_types"],
        postprocess=NER.postprocess(),
        normalize=lambda wc: NER.method_normalize(wc.ner_variant),
        batch_size=config["ner"]["eval_batch_size"],
    script:
        "../workflow/scripts/ner_real_predict.py"


rule ner_real:
    input:
        predictions=plan.predictions(NER.real_methods()),
    output:
        table=report(
            "results/tables/ner_real.csv",
            category="NER study",
            subcategory="Real scans",
            caption="../workflow/report/ner_real.rst",
        ),
        md="results/tables/ner_real.md",
    log:
        "logs/ner_real/ner_real.log",
    benchmark:
        "benchmarks/ner_real/ner_real.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        methods=NER.real_methods(),
        context=NER.caption_context(),
    script:
        "../workflow/scripts/ner_real.py"


if NER.real_scan_enabled():
    register_targets("results/tables/ner_real.csv", "results/tables/ner_real.md")
