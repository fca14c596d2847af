# Materialise hf:, gguf: and random: model sources as save_pretrained folders (once).


rule prepare_model:
    output:
        model=directory("resources/models/{model}"),
    params:
        entry=lambda wc: MODELS.entry(wc.model),
    log:
        "logs/prepare_model/{model}.log",
    benchmark:
        "benchmarks/prepare_model/{model}.tsv"
    resources:
        mem_mb=16000,
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/prepare_model.py"
