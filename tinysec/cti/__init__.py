"""ATT&CK tactic and technique extraction from CTI sentences.

Modules: ``labels`` (the ATT&CK label catalogue), ``clean`` (text cleaning), ``corpus`` (readers
for the three data sources), ``splits`` (seeded stratified splits, the dataset and its
subsample), ``outputs`` (mapping model output onto labels), ``metrics``, ``tfidf`` (baseline),
``prompts``, ``predictor`` (a contestant's model folder and its answers), ``contestants``
(building the folder of a LoRA fine-tune, zero-shot/API model or TF-IDF baseline), ``evaluate``
(scoring answers), ``tables`` and ``cli`` (``tinysec cti-eval``).
"""

TASKS = ("tactic", "technique")
