# rules of the 'osint' section (see docs/DEVELOPING.md): DNS/WHOIS/Shodan/Nmap collectors into
# one record format (tinysec/osint/record.py), the seeded synthetic corpus, records.jsonl and
# its statistics table and figure.


rule osint_collect:
    output:
        record="results/osint/raw/{source}/{target}.json",
    log:
        "logs/osint_collect/{source}/{target}.log",
    benchmark:
        "benchmarks/osint_collect/{source}/{target}.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        target=lambda wc: OSINT.target(wc.source, wc.target),
        options=lambda wc: config["osint"][wc.source],
    script:
        "../workflow/scripts/osint_collect.py"


rule osint_synthetic:
    output:
        records="results/osint/synthetic.jsonl",
    log:
        "logs/osint_synthetic/synthetic.log",
    benchmark:
        "benchmarks/osint_synthetic/synthetic.tsv"
    # the NER chain (corpus -> taggers -> tables) is the run's longest: start it first
    priority: 10
    conda:
        "../envs/tinysec.yaml"
    params:
        n_records=config["osint"]["synthetic"]["n_records"],
        mix=config["osint"]["synthetic"]["mix"],
        seed=OSINT.synthetic_seed(),
        record_types=config["osint"]["dns"]["record_types"],
    script:
        "../workflow/scripts/osint_synthetic.py"


rule osint_records:
    input:
        collected=OSINT.collected_records(),
        synthetic=OSINT.synthetic_records(),
    output:
        records="results/osint/records.jsonl",
    log:
        "logs/osint_records/records.log",
    benchmark:
        "benchmarks/osint_records/records.tsv"
    # the NER chain (corpus -> taggers -> tables) is the run's longest: start it first
    priority: 10
    conda:
        "../envs/tinysec.yaml"
    script:
        "../workflow/scripts/osint_records.py"


rule osint_stats:
    input:
        records="results/osint/records.jsonl",
    output:
        csv="results/tables/osint_corpus.csv",
        md=report(
            "results/tables/osint_corpus.md",
            category="NER study",
            subcategory="OSINT corpus",
            caption="../workflow/report/osint_corpus.rst",
        ),
        figure=report(
            "results/figures/osint_entities.png",
            category="NER study",
            subcategory="OSINT corpus",
            caption="../workflow/report/osint_entities.rst",
        ),
    log:
        "logs/osint_stats/stats.log",
    benchmark:
        "benchmarks/osint_stats/stats.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        run_name=config["run_name"],
    script:
        "../workflow/scripts/osint_stats.py"


if section_enabled("osint"):
    register_targets(
        "results/tables/osint_corpus.md",
        "results/figures/osint_entities.png",
    )
