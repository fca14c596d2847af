# rules of the 'cti' section (see docs/DEVELOPING.md): ATT&CK tactic and technique extraction
# from CTI sentences (one table per task): data and splits, LoRA fine-tunes, zero-shot, TF-IDF and
# encoder-classifier baselines, scores and tables; the held-out groups split and its tables.


rule cti_data:
    input:
        unpack(lambda wc: CTI.source_inputs()),
    output:
        train="results/cti/train.jsonl",
        val="results/cti/val.jsonl",
        test="results/cti/test.jsonl",
        labels="results/cti/labels.json",
        stats="results/cti/data_stats.json",
    log:
        "logs/cti_data/cti_data.log",
    benchmark:
        "benchmarks/cti_data/cti_data.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        source=CTI.source(),
        min_length=config["cti"]["min_length"],
        to_parent=config["cti"]["subtechniques_to_parent"],
        split=config["cti"]["split"],
        seed=config["seed"],
    script:
        "../workflow/scripts/cti_data.py"


rule cti_subset:
    input:
        train="results/cti/train.jsonl",
        test="results/cti/test.jsonl",
    output:
        train="results/cti/subset/train.jsonl",
        test="results/cti/subset/test.jsonl",
    log:
        "logs/cti_subset/cti_subset.log",
    benchmark:
        "benchmarks/cti_subset/cti_subset.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        n_train=config["cti"]["train_size"],
        n_test=config["cti"]["test_size"],
        seed=config["seed"],
        top_techniques=config["cti"]["llm_top_techniques"],
    script:
        "../workflow/scripts/cti_subset.py"


rule cti_finetune:
    input:
        train="results/cti/subset/train.jsonl",
        labels="results/cti/labels.json",
        model=lambda wc: model_path(wc.model),
    output:
        model=directory("results/cti/{model}-lora/{task}_model"),
        metrics="results/cti/{model}-lora/{task}_train_metrics.json",
    log:
        "logs/cti_finetune/{model}-{task}.log",
    benchmark:
        "benchmarks/cti_finetune/{model}-{task}.tsv"
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    params:
        hparams=lambda wc: CTI.hparams(wc.model),
        prompt=lambda wc: CTI.prompt(wc.model),
        label=lambda wc: CTI.finetune_label(wc.model),
        checkpoint_dir="results/checkpoints/cti/{model}-lora-{task}",
        memory_fraction=CTI.memory_fraction(),
    script:
        "../workflow/scripts/cti_finetune.py"


rule cti_zero_shot_model:
    input:
        train="results/cti/subset/train.jsonl",
        labels="results/cti/labels.json",
        model=lambda wc: CTI.model_inputs(wc.contestant),
    output:
        model=directory("results/cti/{contestant}/{task}_model"),
    log:
        "logs/cti_zero_shot_model/{contestant}-{task}.log",
    benchmark:
        "benchmarks/cti_zero_shot_model/{contestant}-{task}.tsv"
    wildcard_constraints:
        contestant=one_of(CTI.zero_shot()),
    conda:
        "../envs/tinysec.yaml"
    params:
        entry=lambda wc: MODELS.entry(wc.contestant),
        label=lambda wc: MODELS.label(wc.contestant),
        api=lambda wc: MODELS.is_api(wc.contestant),
        prompt=lambda wc: CTI.prompt(wc.contestant),
        choices=config["cti"]["zero_shot_labels"],
    script:
        "../workflow/scripts/cti_zero_shot_model.py"


rule cti_tfidf:
    input:
        train=lambda wc: CTI.train_file(wc.variant),
        test=lambda wc: CTI.test_file(wc.variant),
        labels="results/cti/labels.json",
    output:
        model=directory("results/cti/{variant}/{task}_model"),
        answers="results/cti/{variant}/{task}_answers.jsonl",
    log:
        "logs/cti_tfidf/{variant}-{task}.log",
    benchmark:
        "benchmarks/cti_tfidf/{variant}-{task}.tsv"
    wildcard_constraints:
        variant="tfidf-lr|tfidf-lr-full|tfidf-lr-heldout",
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS
    params:
        settings=CTI.tfidf_settings(),
        seed=config["seed"],
        label=lambda wc: CTI.tfidf_label(wc.variant),
    script:
        "../workflow/scripts/cti_tfidf.py"


rule cti_heldout:
    input:
        unpack(lambda wc: CTI.source_inputs()),
        train="results/cti/train.jsonl",
        val="results/cti/val.jsonl",
        test="results/cti/test.jsonl",
        stats="results/cti/data_stats.json",
    output:
        train="results/cti/heldout/train.jsonl",
        val="results/cti/heldout/val.jsonl",
        test="results/cti/heldout/test.jsonl",
        stats="results/cti/heldout/data_stats.json",
    log:
        "logs/cti_heldout/cti_heldout.log",
    benchmark:
        "benchmarks/cti_heldout/cti_heldout.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        source=CTI.source(),
        min_length=config["cti"]["min_length"],
        to_parent=config["cti"]["subtechniques_to_parent"],
        fraction=config["cti"]["heldout"]["fraction"],
        seed=config["seed"],
    script:
        "../workflow/scripts/cti_heldout.py"


rule cti_encoder:
    input:
        train=lambda wc: CTI.train_file(wc.row),
        val=lambda wc: CTI.val_file(wc.row),
        test=lambda wc: CTI.test_file(wc.row),
        labels="results/cti/labels.json",
        encoder=lambda wc: model_path(CTI.encoder_model()),
    output:
        classifier=directory("results/cti/{row}/classifier"),
        tactic_model=directory("results/cti/{row}/tactic_model"),
        technique_model=directory("results/cti/{row}/technique_model"),
        tactic_answers="results/cti/{row}/tactic_answers.jsonl",
        technique_answers="results/cti/{row}/technique_answers.jsonl",
        metrics="results/cti/{row}/train_metrics.json",
    log:
        "logs/cti_encoder/{row}.log",
    benchmark:
        "benchmarks/cti_encoder/{row}.tsv"
    wildcard_constraints:
        row="encoder|encoder-heldout",
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS
    params:
        tasks=["tactic", "technique"],
        settings=CTI.encoder_settings(),
        seed=config["seed"],
        label=lambda wc: CTI.encoder_label(wc.row),
    script:
        "../workflow/scripts/cti_encoder.py"


rule cti_answer:
    input:
        model="results/cti/{contestant}/{task}_model",
        test=lambda wc: CTI.test_file(wc.contestant),
        weights=lambda wc: CTI.model_inputs(wc.contestant),
    output:
        answers="results/cti/{contestant}/{task}_answers.jsonl",
    log:
        "logs/cti_answer/{contestant}-{task}.log",
    benchmark:
        "benchmarks/cti_answer/{contestant}-{task}.tsv"
    wildcard_constraints:
        contestant=one_of(CTI.llm_contestants()),
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS
    resources:
        **gpu_resources(),
    params:
        gen=config["cti"]["generation"],
    script:
        "../workflow/scripts/cti_answer.py"


rule cti_score:
    input:
        model="results/cti/{contestant}/{task}_model",
        answers="results/cti/{contestant}/{task}_answers.jsonl",
        test=lambda wc: CTI.test_file(wc.contestant),
    output:
        metrics="results/cti/{contestant}/{task}_metrics.json",
        per_label="results/cti/{contestant}/{task}_per_label.csv",
        predictions="results/cti/{contestant}/{task}_predictions.jsonl",
    log:
        "logs/cti_score/{contestant}-{task}.log",
    benchmark:
        "benchmarks/cti_score/{contestant}-{task}.tsv"
    wildcard_constraints:
        contestant=one_of(CTI.scored()),
    conda:
        "../envs/tinysec.yaml"
    params:
        intervals=CTI.intervals(),
    script:
        "../workflow/scripts/cti_score.py"


rule cti_table:
    input:
        metrics=lambda wc: expand(
            "results/cti/{contestant}/{task}_metrics.json",
            contestant=CTI.contestants(),
            task=wc.task,
        ),
        stats="results/cti/data_stats.json",
        train="results/cti/subset/train.jsonl",
        test="results/cti/subset/test.jsonl",
        labels="results/cti/labels.json",
    output:
        csv=report(
            "results/tables/{task}.csv",
            category="Small-LLM study",
            subcategory="CTI extraction",
            caption="../workflow/report/cti_table.rst",
        ),
        md=report(
            "results/tables/{task}.md",
            category="Small-LLM study",
            subcategory="CTI extraction",
            caption="../workflow/report/cti_table.rst",
        ),
    log:
        "logs/cti_table/{task}.log",
    benchmark:
        "benchmarks/cti_table/{task}.tsv"
    wildcard_constraints:
        task="tactic|technique",
    conda:
        "../envs/tinysec.yaml"
    params:
        hparams=config["cti"]["train"],
        choices=config["cti"]["zero_shot_labels"],
        memory_fraction=CTI.memory_fraction(),
        top_techniques=config["cti"]["llm_top_techniques"],
    script:
        "../workflow/scripts/cti_table.py"


use rule cti_table as cti_table_heldout with:
    input:
        metrics=lambda wc: expand(
            "results/cti/{contestant}/{task}_metrics.json",
            contestant=CTI.heldout_rows(),
            task=wc.task,
        ),
        stats="results/cti/heldout/data_stats.json",
        train="results/cti/heldout/train.jsonl",
        test="results/cti/heldout/test.jsonl",
        labels="results/cti/labels.json",
    output:
        csv=report(
            "results/tables/{task}_heldout.csv",
            category="Small-LLM study",
            subcategory="CTI extraction",
            caption="../workflow/report/cti_heldout.rst",
        ),
        md=report(
            "results/tables/{task}_heldout.md",
            category="Small-LLM study",
            subcategory="CTI extraction",
            caption="../workflow/report/cti_heldout.rst",
        ),
    log:
        "logs/cti_table_heldout/{task}.log",
    benchmark:
        "benchmarks/cti_table_heldout/{task}.tsv"
    params:
        hparams=config["cti"]["train"],
        choices=config["cti"]["zero_shot_labels"],
        memory_fraction=CTI.memory_fraction(),
        top_techniques=None,


if section_enabled("cti"):
    register_targets(
        *expand("results/tables/{task}.{ext}", task=config["cti"]["tasks"], ext=["csv", "md"]),
        *expand(
            "results/cti/{contestant}/{task}_per_label.csv",
            contestant=CTI.contestants(),
            task=config["cti"]["tasks"],
        ),
        *expand(
            "results/tables/{task}_heldout.{ext}",
            task=config["cti"]["tasks"] if CTI.heldout_rows() else [],
            ext=["csv", "md"],
        ),
    )
