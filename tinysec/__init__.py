"""tinysec: small cybersecurity LLMs and robust NER over OSINT, as a Snakemake pipeline.

One module (or sub-package) per concern:

- ``tinysec.models``   model sources, loading, LoRA/full training, batched generation, embeddings
- ``tinysec.data``     instruction data readers and the embedded ATT&CK instruction set
- ``tinysec.judge``    pairwise judges (api, hf, reference) and battle files
- ``tinysec.rating``   online Elo, shuffled Elo, Bradley-Terry with bootstrap CIs
- ``tinysec.cti``      ATT&CK tactic/technique extraction data, baselines and metrics
- ``tinysec.osint``    DNS/WHOIS/Shodan/Nmap collectors and the synthetic corpus
- ``tinysec.ner``      identification module, NER corpus, perturbations, encoder+CRF tagger
- ``tinysec.reports``  tables (CSV + Markdown) and figures (PNG)
- ``tinysec.gpu``      GPU slot claiming for local Snakemake runs
"""

__version__ = "0.1.0"
