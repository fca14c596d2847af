# rules of the 'instruct' section (see docs/DEVELOPING.md): instruction data, LoRA and full
# fine-tuning (Tables 3-4 analog: finetune_time), answers of every contestant for the judge.
rule instruct_fetch:
    output:
        data="results/data/downloads/{name}",
    params:
        entry=lambda wc: instruct_data_entry(wc.name),
    log:
        "logs/instruct_fetch/{name}.log",
    benchmark:
        "benchmarks/instruct_fetch/{name}.tsv"
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/instruct_fetch.py"


rule instruct_data:
    input:
        train=instruct_data_inputs("train"),
        eval=instruct_data_inputs("eval"),
    output:
        train="results/data/instruct_train.jsonl",
        eval="results/data/instruct_eval.jsonl",
        quality="results/data/instruct_quality.json",
    params:
        data=instruct_config().get("data", {}),
        train_names=[e["name"] for e in instruct_data_entries("train")],
        eval_names=[e["name"] for e in instruct_data_entries("eval")],
        seed=config.get("seed", 0),
    log:
        "logs/instruct_data/instruct_data.log",
    benchmark:
        "benchmarks/instruct_data/instruct_data.tsv"
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/instruct_data.py"


rule train_lora:
    input:
        train="results/data/instruct_train.jsonl",
        model=lambda wc: model_path(wc.model),
    output:
        adapter=directory("results/finetune/{model}-lora/adapter"),
        metrics="results/finetune/{model}-lora/train_metrics.json",
    params:
        hparams=lambda wc: instruct_hparams(wc.model, "lora"),
        prompt=lambda wc: instruct_prompt(wc.model),
        checkpoint_dir="results/checkpoints/{model}-lora",
        gpus=config["device"]["gpus_per_job"],
    log:
        "logs/train_lora/{model}.log",
    benchmark:
        "benchmarks/train_lora/{model}.tsv"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/instruct_train.py"


rule train_full:
    input:
        train="results/data/instruct_train.jsonl",
        model=lambda wc: model_path(wc.model),
    output:
        model=directory("results/finetune/{model}-full/model"),
        metrics="results/finetune/{model}-full/train_metrics.json",
    params:
        hparams=lambda wc: instruct_hparams(wc.model, "full"),
        prompt=lambda wc: instruct_prompt(wc.model),
        checkpoint_dir="results/checkpoints/{model}-full",
        gpus=config["device"]["gpus_per_job"],
    log:
        "logs/train_full/{model}.log",
    benchmark:
        "benchmarks/train_full/{model}.tsv"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/instruct_train.py"


rule generate_base:
    input:
        eval="results/data/instruct_eval.jsonl",
        model=lambda wc: model_path(wc.model),
    output:
        answers="results/answers/{model}.jsonl",
    params:
        gen=instruct_config().get("generation", {}),
        prompt=lambda wc: instruct_prompt(wc.model),
        gpus=config["device"]["gpus_per_job"],
    wildcard_constraints:
        model=instruct_only(instruct_local_answerers()),
    log:
        "logs/generate_base/{model}.log",
    benchmark:
        "benchmarks/generate_base/{model}.tsv"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/instruct_generate.py"


rule generate_lora:
    input:
        eval="results/data/instruct_eval.jsonl",
        model=lambda wc: model_path(wc.model),
        adapter="results/finetune/{model}-lora/adapter",
    output:
        answers="results/answers/{model}-lora.jsonl",
    params:
        gen=instruct_config().get("generation", {}),
        prompt=lambda wc: instruct_prompt(wc.model),
        gpus=config["device"]["gpus_per_job"],
    wildcard_constraints:
        model=instruct_only(instruct_base_models()),
    log:
        "logs/generate_lora/{model}.log",
    benchmark:
        "benchmarks/generate_lora/{model}.tsv"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/instruct_generate.py"


rule generate_full:
    input:
        eval="results/data/instruct_eval.jsonl",
        model="results/finetune/{model}-full/model",
    output:
        answers="results/answers/{model}-full.jsonl",
    params:
        gen=instruct_config().get("generation", {}),
        prompt=lambda wc: instruct_prompt(wc.model),
        gpus=config["device"]["gpus_per_job"],
    wildcard_constraints:
        model=instruct_only(instruct_base_models()),
    log:
        "logs/generate_full/{model}.log",
    benchmark:
        "benchmarks/generate_full/{model}.tsv"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/instruct_generate.py"


rule generate_api:
    input:
        eval="results/data/instruct_eval.jsonl",
    output:
        answers="results/answers/{model}.jsonl",
    params:
        gen=instruct_config().get("generation", {}),
        api_entry=lambda wc: model_entry(wc.model),
        prompt=lambda wc: {"system": instruct_config().get("prompt", {}).get("system")},
    wildcard_constraints:
        model=instruct_only(instruct_api_answerers()),
    log:
        "logs/generate_api/{model}.log",
    benchmark:
        "benchmarks/generate_api/{model}.tsv"
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/instruct_generate.py"


rule finetune_time_table:
    input:
        metrics=[
            f"results/finetune/{m}-{meth}/train_metrics.json"
            for m in instruct_base_models()
            for meth in instruct_config().get("methods", [])
        ],
    output:
        csv="results/tables/finetune_time.csv",
        md=report(
            "results/tables/finetune_time.md",
            category="Small-LLM study",
            subcategory="Fine-tuning cost",
            caption="../workflow/report/finetune_time.rst",
        ),
    params:
        # the base model of each metrics file, in input order
        models=[
            m
            for m in instruct_base_models()
            for meth in instruct_config().get("methods", [])
        ],
        labels={m: model_entry(m).get("label", m) for m in instruct_base_models()},
        train_size=instruct_config().get("data", {}).get("train_size"),
    log:
        "logs/finetune_time_table/finetune_time_table.log",
    benchmark:
        "benchmarks/finetune_time_table/finetune_time_table.tsv"
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/finetune_time_table.py"


if section_enabled("instruct"):
    register_targets(
        "results/data/instruct_quality.json",
        *instruct_answer_files(),
    )
    if instruct_base_models() and instruct_config().get("methods"):
        register_targets("results/tables/finetune_time.csv", "results/tables/finetune_time.md")
