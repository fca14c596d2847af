# rules of the NER study's method axis (ner.methods, see tinysec/ner/methods.py): the raw test
# inputs every method tags, each method's corpus and robust tagger, and its tagging of the raw test
# inputs (LLM methods through the tag-time chain of tinysec/ner/chain.py). Included after ner.smk.


rule ner_method_testset:
    input:
        test=f"{NER_DATA}/test.jsonl",
    output:
        test=f"{NER_DATA}/test.raw.jsonl",
    log:
        "logs/ner_method_testset/test.log",
    benchmark:
        "benchmarks/ner_method_testset/test.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        max_rows=config["ner"]["method_test_rows"],
        seed=config["seed"],
    script:
        "../workflow/scripts/ner_method_testset.py"


rule ner_method_corpus:
    input:
        unpack(lambda wc: NER.method_corpus_inputs(wc.ner_method)),
    output:
        train=f"{NER_DATA}/{{ner_method}}/train.jsonl",
        val=f"{NER_DATA}/{{ner_method}}/val.jsonl",
        stats=f"{NER_DATA}/{{ner_method}}/stats.json",
    log:
        "logs/ner_method_corpus/{ner_method}.log",
    benchmark:
        "benchmarks/ner_method_corpus/{ner_method}.tsv"
    wildcard_constraints:
        ner_method=one_of(NER.corpus_methods()),
    # the NER chain (corpus -> taggers -> tables) is the run's longest: start it first
    priority: 10
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    params:
        kind=lambda wc: NER.method_kind(wc.ner_method),
        llm_entry=lambda wc: NER.method_llm_entry(wc.ner_method),
        chain=config["ner"]["chain"],
        seed=config["seed"],
    script:
        "../workflow/scripts/ner_method_corpus.py"


use rule ner_data_adversarial as ner_method_adversarial with:
    input:
        unpack(lambda wc: NER_CORPUS.llm_input("paraphrase")),
        train=f"{NER_DATA}/{{ner_method}}/train.jsonl",
        embedder=lambda wc: (
            model_path(config["embedder"]) if config["ner_data"]["paraphrase"]["enabled"] else []
        ),
    output:
        adv=f"{NER_DATA}/{{ner_method}}/train.adv.jsonl",
        stats=f"{NER_DATA}/{{ner_method}}/train.adv.stats.json",
    log:
        "logs/ner_method_adversarial/{ner_method}.log",
    benchmark:
        "benchmarks/ner_method_adversarial/{ner_method}.tsv"
    wildcard_constraints:
        ner_method=one_of(NER.llm_methods()),


use rule ner_train as ner_method_train with:
    input:
        unpack(lambda wc: NER.method_train_inputs(wc.ner_method, wc.ner_encoder)),
    output:
        model=directory("results/ner/models/{ner_encoder}/llm/{ner_method}/{ner_variant}"),
    log:
        "logs/ner_method_train/{ner_encoder}/{ner_method}/{ner_variant}.log",
    benchmark:
        "benchmarks/ner_method_train/{ner_encoder}/{ner_method}/{ner_variant}.tsv"
    wildcard_constraints:
        ner_method=one_of(NER.llm_methods()),
        ner_variant="robust",


rule ner_method_predict:
    input:
        unpack(lambda wc: NER.method_predict_inputs(wc.ner_method, wc.ner_encoder)),
    output:
        predictions="results/ner/pred/methods/{ner_method}/{ner_encoder}.jsonl",
        stats="results/ner/pred/methods/{ner_method}/{ner_encoder}.stats.json",
    log:
        "logs/ner_method_predict/{ner_method}/{ner_encoder}.log",
    benchmark:
        "benchmarks/ner_method_predict/{ner_method}/{ner_encoder}.tsv"
    wildcard_constraints:
        ner_method=one_of(NER.methods()),
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    params:
        kind=lambda wc: NER.method_kind(wc.ner_method),
        llm_entry=lambda wc: NER.method_llm_entry(wc.ner_method),
        normalize=lambda wc: NER.method_normalize(wc.ner_method),
        postprocess=NER.postprocess(),
        batch_size=config["ner"]["eval_batch_size"],
        chain=config["ner"]["chain"],
        seed=config["seed"],
        cache="results/cache/ner_llm",
    script:
        "../workflow/scripts/ner_method_predict.py"
