# rules of the 'instruct' section (see docs/DEVELOPING.md): instruction data, LoRA and full
# fine-tuning (time and memory table: finetune_time), answers of every contestant for the judge.
rule instruct_fetch:
    output:
        data="results/data/downloads/{name}",
    log:
        "logs/instruct_fetch/{name}.log",
    benchmark:
        "benchmarks/instruct_fetch/{name}.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        entry=lambda wc: INSTRUCT.data_entry(wc.name),
    script:
        "../workflow/scripts/instruct_fetch.py"


rule instruct_data:
    input:
        train=INSTRUCT.data_inputs("train"),
        eval=INSTRUCT.data_inputs("eval"),
    output:
        train="results/data/instruct_train.jsonl",
        eval="results/data/instruct_eval.jsonl",
        quality="results/data/instruct_quality.json",
    log:
        "logs/instruct_data/instruct_data.log",
    benchmark:
        "benchmarks/instruct_data/instruct_data.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        data=config["instruct"]["data"],
        train_names=[e["name"] for e in INSTRUCT.data_entries("train")],
        eval_names=[e["name"] for e in INSTRUCT.data_entries("eval")],
        seed=config["seed"],
    script:
        "../workflow/scripts/instruct_data.py"


rule train_lora:
    input:
        train="results/data/instruct_train.jsonl",
        model=lambda wc: model_path(wc.model),
    output:
        weights=directory("results/finetune/{model}-lora/adapter"),
        metrics="results/finetune/{model}-lora/train_metrics.json",
    log:
        "logs/train_lora/{model}.log",
    benchmark:
        "benchmarks/train_lora/{model}.tsv"
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(INSTRUCT.train_gpus()),
    params:
        hparams=lambda wc: INSTRUCT.hparams(wc.model, "lora"),
        prompt=lambda wc: INSTRUCT.prompt(wc.model),
        checkpoint_dir="results/checkpoints/{model}-lora",
    script:
        "../workflow/scripts/train_lora.py"


use rule train_lora as train_full with:
    output:
        weights=directory("results/finetune/{model}-full/model"),
        metrics="results/finetune/{model}-full/train_metrics.json",
    log:
        "logs/train_full/{model}.log",
    benchmark:
        "benchmarks/train_full/{model}.tsv"
    params:
        hparams=lambda wc: INSTRUCT.hparams(wc.model, "full"),
        checkpoint_dir="results/checkpoints/{model}-full",


# timing-only models (instruct.timing_only): the same training, stopped after a few steps; the
# weights are not kept
use rule train_lora as train_timing with:
    output:
        weights=temp(directory("results/timing/{model}-{method}/weights")),
        metrics="results/timing/{model}-{method}/train_metrics.json",
    log:
        "logs/train_timing/{model}-{method}.log",
    benchmark:
        "benchmarks/train_timing/{model}-{method}.tsv"
    wildcard_constraints:
        model=one_of(plan.unique(m for m, _ in INSTRUCT.timing_runs())),
    params:
        hparams=lambda wc: INSTRUCT.timing_hparams(wc.model, wc.method),
        checkpoint_dir="results/checkpoints/{model}-{method}-timing",


rule generate_base:
    input:
        unpack(lambda wc: INSTRUCT.weights(wc.model)),
        eval="results/data/instruct_eval.jsonl",
    output:
        answers="results/answers/{model}.jsonl",
    log:
        "logs/generate_base/{model}.log",
    benchmark:
        "benchmarks/generate_base/{model}.tsv"
    wildcard_constraints:
        model=one_of(INSTRUCT.local_answerers()),
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    params:
        gen=config["instruct"]["generation"],
        prompt=lambda wc: INSTRUCT.prompt(wc.model),
    script:
        "../workflow/scripts/generate_base.py"


use rule generate_base as generate_finetuned with:
    input:
        unpack(lambda wc: INSTRUCT.weights(wc.model, wc.method)),
        eval="results/data/instruct_eval.jsonl",
    output:
        answers="results/answers/{model}-{method}.jsonl",
    log:
        "logs/generate_finetuned/{model}-{method}.log",
    benchmark:
        "benchmarks/generate_finetuned/{model}-{method}.tsv"
    wildcard_constraints:
        model=one_of(INSTRUCT.base_models()),
        method=one_of(config["instruct"]["methods"]),


rule generate_api:
    input:
        eval="results/data/instruct_eval.jsonl",
    output:
        answers="results/answers/{model}.jsonl",
    log:
        "logs/generate_api/{model}.log",
    benchmark:
        "benchmarks/generate_api/{model}.tsv"
    wildcard_constraints:
        model=one_of(INSTRUCT.api_answerers()),
    conda:
        "../envs/tinysec.yaml"
    params:
        gen=config["instruct"]["generation"],
        api_entry=lambda wc: MODELS.entry(wc.model),
        system=config["instruct"]["prompt"]["system"],
    script:
        "../workflow/scripts/generate_api.py"


rule finetune_time_table:
    input:
        metrics=[r["metrics"] for r in INSTRUCT.time_table_runs()],
    output:
        csv="results/tables/finetune_time.csv",
        md=report(
            "results/tables/finetune_time.md",
            category="Small-LLM study",
            subcategory="Fine-tuning cost",
            caption="../workflow/report/finetune_time.rst",
        ),
    log:
        "logs/finetune_time_table/finetune_time_table.log",
    benchmark:
        "benchmarks/finetune_time_table/finetune_time_table.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        # the base model of each metrics file, and whether it is a timing-only run, in input order
        models=[r["model"] for r in INSTRUCT.time_table_runs()],
        extrapolate=[r["extrapolate"] for r in INSTRUCT.time_table_runs()],
        labels={r["model"]: MODELS.label(r["model"]) for r in INSTRUCT.time_table_runs()},
        train_size=config["instruct"]["data"]["train_size"],
    script:
        "../workflow/scripts/finetune_time_table.py"


if section_enabled("instruct"):
    register_targets(
        "results/data/instruct_quality.json",
        *INSTRUCT.answer_files(),
    )
    if INSTRUCT.time_table_runs():
        register_targets("results/tables/finetune_time.csv", "results/tables/finetune_time.md")
