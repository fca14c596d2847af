# rules of the 'ner_data' section (see docs/DEVELOPING.md): OSINT records -> NER corpus,
# stratified splits, corpus statistics, perturbed test sets and adversarial training variants.


rule ner_data_corpus:
    input:
        unpack(lambda wc: NER_CORPUS.llm_input("rephrase")),
        records="results/osint/records.jsonl",
    output:
        train=f"{NER_DATA}/train.jsonl",
        val=f"{NER_DATA}/val.jsonl",
        test=f"{NER_DATA}/test.jsonl",
        stats=f"{NER_DATA}/corpus_stats.json",
    log:
        "logs/ner_data_corpus/corpus.log",
    benchmark:
        "benchmarks/ner_data_corpus/corpus.tsv"
    # the NER chain (corpus -> taggers -> tables) is the run's longest: start it first
    priority: 10
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS if config["ner_data"]["rephrase"]["enabled"] else 1
    resources:
        **(gpu_resources() if config["ner_data"]["rephrase"]["enabled"] else {}),
    params:
        types=config["ner_data"]["entity_types"],
        seed=config["seed"],
        templates=config["ner_data"]["templates"],
        max_records=config["ner_data"]["max_records"],
        split=config["ner_data"]["split"],
        rephrase=config["ner_data"]["rephrase"],
        llm_entry=lambda wc: NER_CORPUS.llm_entry("rephrase"),
    script:
        "../workflow/scripts/ner_data_corpus.py"


rule ner_data_table:
    input:
        train=rules.ner_data_corpus.output.train,
        val=rules.ner_data_corpus.output.val,
        test=rules.ner_data_corpus.output.test,
        stats=rules.ner_data_corpus.output.stats,
    output:
        csv=report(
            "results/tables/ner_corpus.csv",
            category="NER study",
            subcategory="NER corpus",
            caption="../workflow/report/ner_corpus.rst",
        ),
        md=report(
            "results/tables/ner_corpus.md",
            category="NER study",
            subcategory="NER corpus",
            caption="../workflow/report/ner_corpus.rst",
        ),
    log:
        "logs/ner_data_table/table.log",
    benchmark:
        "benchmarks/ner_data_table/table.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        types=config["ner_data"]["entity_types"],
        seed=config["seed"],
        split=config["ner_data"]["split"],
        run_name=config["run_name"],
    script:
        "../workflow/scripts/ner_data_table.py"


rule ner_data_perturb:
    input:
        test=rules.ner_data_corpus.output.test,
    output:
        perturbed=f"{NER_DATA}/test.{{family}}.jsonl",
    log:
        "logs/ner_data_perturb/{family}.log",
    benchmark:
        "benchmarks/ner_data_perturb/{family}.tsv"
    wildcard_constraints:
        family=one_of(NER_CORPUS.perturb_families()),
    conda:
        "../envs/tinysec.yaml"
    params:
        operators=lambda wc: config["ner_data"]["perturb"]["families"][wc.family],
        seed=config["seed"],
        entity_prob=config["ner_data"]["perturb"]["entity_prob"],
        char_rate=config["ner_data"]["perturb"]["char_rate"],
    script:
        "../workflow/scripts/ner_data_perturb.py"


rule ner_data_paraphrase:
    input:
        unpack(lambda wc: NER_CORPUS.llm_input("paraphrase", always=True)),
        test=rules.ner_data_corpus.output.test,
        embedder=model_path(config["embedder"]),
    output:
        perturbed=f"{NER_DATA}/test.paraphrase.jsonl",
        stats=f"{NER_DATA}/test.paraphrase.stats.json",
    log:
        "logs/ner_data_paraphrase/test.log",
    benchmark:
        "benchmarks/ner_data_paraphrase/test.tsv"
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    params:
        paraphrase=config["ner_data"]["paraphrase"],
        llm_entry=lambda wc: MODELS.entry(config["ner_data"]["paraphrase"]["model"]),
        seed=config["seed"],
    script:
        "../workflow/scripts/ner_data_paraphrase.py"


rule ner_data_adversarial:
    input:
        unpack(lambda wc: NER_CORPUS.llm_input("paraphrase")),
        train=rules.ner_data_corpus.output.train,
        embedder=lambda wc: (
            model_path(config["embedder"]) if config["ner_data"]["paraphrase"]["enabled"] else []
        ),
    output:
        adv=f"{NER_DATA}/train.adv.jsonl",
        stats=f"{NER_DATA}/train.adv.stats.json",
    log:
        "logs/ner_data_adversarial/train.log",
    benchmark:
        "benchmarks/ner_data_adversarial/train.tsv"
    # the NER chain (corpus -> taggers -> tables) is the run's longest: start it first
    priority: 10
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS if config["ner_data"]["paraphrase"]["enabled"] else 1
    resources:
        **(gpu_resources() if config["ner_data"]["paraphrase"]["enabled"] else {}),
    params:
        families=config["ner_data"]["perturb"]["families"],
        adv_families=config["ner_data"]["perturb"]["adv_families"],
        copies=config["ner_data"]["perturb"]["adv_copies"],
        entity_prob=config["ner_data"]["perturb"]["entity_prob"],
        char_rate=config["ner_data"]["perturb"]["char_rate"],
        seed=config["seed"],
        paraphrase=config["ner_data"]["paraphrase"],
        llm_entry=lambda wc: NER_CORPUS.llm_entry("paraphrase"),
    script:
        "../workflow/scripts/ner_data_adversarial.py"


if section_enabled("ner_data"):
    register_targets(
        rules.ner_data_table.output.csv,
        rules.ner_data_table.output.md,
    )
