# Materialise hf:, gguf: and random: model sources as save_pretrained folders (once).


rule prepare_model:
    output:
        model=directory("resources/models/{model}"),
    log:
        "logs/prepare_model/{model}.log",
    benchmark:
        "benchmarks/prepare_model/{model}.tsv"
    conda:
        "../envs/tinysec.yaml"
    resources:
        mem_mb=16000,
    params:
        entry=lambda wc: MODELS.entry(wc.model),
    script:
        "../workflow/scripts/prepare_model.py"
