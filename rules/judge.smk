# rules of the 'judge' section (see docs/DEVELOPING.md): pairwise battles judged in one or both
# orders (judge.orders), FastChat-shaped exports, win/tie tables against each reference, and per
# rating pool (judge.pools; suffix '' for pool `all`, `_<pool>` otherwise) Elo / Bradley-Terry
# ratings, predicted win rates and battle counts.

JUDGE_NAME = config["judge"]["judge"]


rule judge_battles:
    input:
        answers=[f"results/answers/{m}.jsonl" for m in JUDGE.answerers()],
        eval="results/data/instruct_eval.jsonl",
        prompt=judge_resource("prompt"),
        reask=judge_resource("reask_prompt"),
        weights=lambda wc: JUDGE.weights(wc.judge),
    output:
        pairs=[f"results/battles/{{judge}}/{a}__vs__{b}.jsonl" for a, b in JUDGE.pairs()],
        battles="results/battles/{judge}/battles.jsonl",
        summary="results/battles/{judge}/summary.json",
    log:
        "logs/judge_battles/{judge}.log",
    benchmark:
        "benchmarks/judge_battles/{judge}.tsv"
    conda:
        "../envs/tinysec.yaml"
    threads: HEAVY_THREADS
    params:
        pairs=JUDGE.pairs(),
        orders=JUDGE.orders(),
        contestants=JUDGE.answerers(),
        spec=lambda wc: JUDGE.spec(wc.judge),
        api=lambda wc: JUDGE.api(wc.judge),
        embedder=config["embedder"],
        cache=lambda wc: f"{config['judge']['cache_dir']}/{wc.judge}.sqlite",
    script:
        "../workflow/scripts/judge_battles.py"


rule elo_table:
    input:
        battles=f"results/battles/{JUDGE_NAME}/battles.jsonl",
        summary=f"results/battles/{JUDGE_NAME}/summary.json",
    output:
        csv="results/tables/elo{pool_suffix}.csv",
        md=report(
            "results/tables/elo{pool_suffix}.md",
            category="Small-LLM study",
            subcategory="Ratings",
            caption="../workflow/report/elo.rst",
        ),
    log:
        "logs/elo_table/elo{pool_suffix}.log",
    benchmark:
        "benchmarks/elo_table/elo{pool_suffix}.tsv"
    wildcard_constraints:
        pool_suffix=one_of(JUDGE.pool_suffixes()),
    conda:
        "../envs/tinysec.yaml"
    threads: 1
    params:
        judge=JUDGE_NAME,
        pool=lambda wc: JUDGE.pool_settings(JUDGE.pool_of(wc.pool_suffix)),
        elo=config["judge"]["elo"],
        bt=config["judge"]["bt"],
        ci=config["judge"]["ci"],
        seed=config["seed"],
    script:
        "../workflow/scripts/elo_table.py"


rule vs_table:
    input:
        pairs=lambda wc: list(JUDGE.vs_pairs(wc.opponent).values()),
    output:
        csv="results/tables/vs_{opponent}.csv",
        md=report(
            "results/tables/vs_{opponent}.md",
            category="Small-LLM study",
            subcategory="Against reference models",
            caption="../workflow/report/vs_table.rst",
        ),
    log:
        "logs/vs_table/{opponent}.log",
    benchmark:
        "benchmarks/vs_table/{opponent}.tsv"
    conda:
        "../envs/tinysec.yaml"
    params:
        judge=JUDGE_NAME,
        models=INSTRUCT.finetuned(),
        orders=JUDGE.orders(),
        self_judged=lambda wc: JUDGE.self_judged([wc.opponent, *INSTRUCT.finetuned()]),
    script:
        "../workflow/scripts/vs_table.py"


rule win_rate_figure:
    input:
        ratings="results/tables/elo{pool_suffix}.csv",
    output:
        figure=report(
            "results/figures/win_rate_predicted{pool_suffix}.png",
            category="Small-LLM study",
            subcategory="Ratings",
            caption="../workflow/report/win_rate.rst",
        ),
    log:
        "logs/win_rate_figure/win_rate{pool_suffix}.log",
    benchmark:
        "benchmarks/win_rate_figure/win_rate{pool_suffix}.tsv"
    wildcard_constraints:
        pool_suffix=one_of(JUDGE.pool_suffixes()),
    conda:
        "../envs/tinysec.yaml"
    params:
        judge=JUDGE_NAME,
        pool=lambda wc: JUDGE.pool_settings(JUDGE.pool_of(wc.pool_suffix)),
        scale=config["judge"]["elo"]["scale"],
        base=config["judge"]["elo"]["base"],
    script:
        "../workflow/scripts/win_rate_figure.py"


rule battle_count_figures:
    input:
        battles=f"results/battles/{JUDGE_NAME}/battles.jsonl",
    output:
        counts=report(
            "results/figures/battle_counts{pool_suffix}.png",
            category="Small-LLM study",
            subcategory="Battle counts",
            caption="../workflow/report/battle_counts.rst",
        ),
        no_ties=report(
            "results/figures/battle_counts_no_ties{pool_suffix}.png",
            category="Small-LLM study",
            subcategory="Battle counts",
            caption="../workflow/report/battle_counts.rst",
        ),
        ties=report(
            "results/figures/battle_counts_ties{pool_suffix}.png",
            category="Small-LLM study",
            subcategory="Battle counts",
            caption="../workflow/report/battle_counts.rst",
        ),
    log:
        "logs/battle_count_figures/battle_counts{pool_suffix}.log",
    benchmark:
        "benchmarks/battle_count_figures/battle_counts{pool_suffix}.tsv"
    wildcard_constraints:
        pool_suffix=one_of(JUDGE.pool_suffixes()),
    conda:
        "../envs/tinysec.yaml"
    params:
        judge=JUDGE_NAME,
        pool=lambda wc: JUDGE.pool_settings(JUDGE.pool_of(wc.pool_suffix)),
    script:
        "../workflow/scripts/battle_count_figures.py"


if section_enabled("judge") and JUDGE.pairs():
    register_targets(
        *JUDGE.pool_targets(),
        *(f"results/tables/vs_{r}.md" for r in INSTRUCT.references() if INSTRUCT.finetuned()),
    )
