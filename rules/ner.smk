# rules of the 'ner' section (see docs/DEVELOPING.md): encoder+CRF taggers (baseline, robust,
# ablations), tagging of the clean and perturbed test sets, and the NER study's tables.


rule ner_train:
    input:
        unpack(ner_train_inputs),
    output:
        model=directory("results/ner/models/{ner_encoder}/{ner_variant}"),
    params:
        settings=ner_train_settings,
        labels=ner_labels(),
    log:
        "logs/ner_train/{ner_encoder}/{ner_variant}.log",
    benchmark:
        "benchmarks/ner_train/{ner_encoder}/{ner_variant}.tsv"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/ner_train.py"


rule ner_predict:
    input:
        unpack(ner_testset_inputs),
        model="results/ner/models/{ner_encoder}/{ner_variant}",
    output:
        predictions="results/ner/pred/{ner_encoder}/{ner_variant}.jsonl",
    params:
        testsets=ner_testset_names(),
        postprocess=ner_postprocess_settings(),
        normalize=config["ner"]["normalize"],
        batch_size=config["ner"]["eval_batch_size"],
        max_rows=config["ner"]["max_test_rows"],
    log:
        "logs/ner_predict/{ner_encoder}/{ner_variant}.log",
    benchmark:
        "benchmarks/ner_predict/{ner_encoder}/{ner_variant}.tsv"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/ner_predict.py"


rule ner_prf:
    input:
        predictions=ner_prf_predictions(),
    output:
        table=report("results/tables/ner_prf.csv", category="NER study", subcategory="Tagging", caption="../workflow/report/ner_prf.rst"),
        md="results/tables/ner_prf.md",
        figure=report("results/figures/ner_prf.png", category="NER study", subcategory="Tagging", caption="../workflow/report/ner_prf.rst"),
    params:
        methods=ner_prf_methods(),
        context=ner_caption_context(),
    log:
        "logs/ner_prf/ner_prf.log",
    benchmark:
        "benchmarks/ner_prf/ner_prf.tsv"
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/ner_prf.py"


rule ner_counts:
    input:
        predictions=ner_main_predictions(["baseline", "robust"]),
    output:
        table=report("results/tables/ner_counts.csv", category="NER study", subcategory="Tagging", caption="../workflow/report/ner_counts.rst"),
        md="results/tables/ner_counts.md",
    params:
        methods=ner_main_methods(["baseline", "robust"]),
        context=ner_caption_context(),
    log:
        "logs/ner_counts/ner_counts.log",
    benchmark:
        "benchmarks/ner_counts/ner_counts.tsv"
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/ner_counts.py"


rule ner_robustness:
    input:
        predictions=ner_main_predictions(["baseline", "robust"]),
    output:
        table=report(
            "results/tables/ner_robustness.csv", category="NER study", subcategory="Tagging", caption="../workflow/report/ner_robustness.rst"
        ),
        md="results/tables/ner_robustness.md",
    params:
        methods=ner_main_methods(["baseline", "robust"]),
        families=ner_families(),
        context=ner_caption_context(),
    log:
        "logs/ner_robustness/ner_robustness.log",
    benchmark:
        "benchmarks/ner_robustness/ner_robustness.tsv"
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/ner_robustness.py"


rule ner_ablation:
    input:
        predictions=ner_main_predictions(["robust", *config["ner"]["ablations"]]),
    output:
        table=report("results/tables/ner_ablation.csv", category="NER study", subcategory="Tagging", caption="../workflow/report/ner_ablation.rst"),
        md="results/tables/ner_ablation.md",
    params:
        methods=ner_main_methods(["robust", *config["ner"]["ablations"]]),
        families=ner_families(),
        context=ner_caption_context(),
    log:
        "logs/ner_ablation/ner_ablation.log",
    benchmark:
        "benchmarks/ner_ablation/ner_ablation.tsv"
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/ner_ablation.py"


rule ner_example:
    input:
        predictions=ner_main_predictions(["baseline", "robust"]),
    output:
        md=report("results/tables/ner_example.md", category="NER study", subcategory="Tagging", caption="../workflow/report/ner_example.rst"),
    params:
        methods=ner_main_methods(["baseline", "robust"]),
        source=config["ner"]["example_source"],
        context=ner_caption_context(),
    log:
        "logs/ner_example/ner_example.log",
    benchmark:
        "benchmarks/ner_example/ner_example.tsv"
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/ner_example.py"


if section_enabled("ner"):
    register_targets(
        "results/tables/ner_prf.csv",
        "results/tables/ner_prf.md",
        "results/figures/ner_prf.png",
        "results/tables/ner_counts.csv",
        "results/tables/ner_counts.md",
        "results/tables/ner_robustness.csv",
        "results/tables/ner_robustness.md",
        "results/tables/ner_ablation.csv",
        "results/tables/ner_ablation.md",
        "results/tables/ner_example.md",
    )
