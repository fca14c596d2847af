"""ATT&CK tactic and technique extraction from CTI sentences (issue 5).

Modules: ``labels`` (the ATT&CK label catalogue), ``clean`` (text cleaning), ``corpus`` (readers
for the three data sources), ``splits`` (seeded stratified splits), ``outputs`` (mapping model
output onto labels), ``metrics``, ``tfidf`` (baseline), ``prompts`` and ``llm`` (LLM fine-tunes and
zero-shot), ``evaluate`` (scoring prediction files), ``tables`` and ``cli`` (``tinysec cti-eval``).
"""

TASKS = ("tactic", "technique")
