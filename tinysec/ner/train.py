"""Fine-tune the encoder+CRF tagger: clean baseline or robust (Algorithm 1 of the NER study).

One training step on a mini-batch ``x`` of clean sentences (and, when adversarial samples are
on, one perturbed variant ``x_adv`` of each sentence that has one):

    L = alpha * L_clean(x) + beta * L_adv(x_adv) [+ lambda * KL(p_clean || p_adv)]

in every batch of robust training (``adv_samples`` and ``adv_loss`` on); a batch in which no
sentence has a variant has ``L_adv = 0`` and still weighs ``L_clean`` by alpha. ``L_*`` is token
cross-entropy plus CRF negative log-likelihood; the KL term, its own switch
(``consistency_loss``, weight ``consistency``), compares the clean and perturbed emission
distributions at aligned words (``word_map`` of the variant; the clean side is the target and gets
no gradient). Without ``adv_samples``/``adv_loss`` the loss is ``L_clean`` (plus the KL term when
that is on and variants exist). Every component is a switch of :class:`TrainSettings`, which is
how the ablation variants are built (:func:`variant_settings`).

Full-parameter fine-tuning with AdamW, linear warm-up then linear decay, seeded; the head and
CRF get their own (larger) learning rate because they start from random weights. Given a
validation file, training stops early on validation F1 (``patience``, at most ``epochs``), keeps
the best epoch's weights, writes the learning curve to ``train_metrics.json`` and fits the
confidence temperature (``calibration.json``). bf16 autocast
only on CUDA; fp32 on CPU. Dropout masks, in the encoder's layers and its attention, are drawn by
:func:`tinysec.models.fastdropout.speed_up_dropout`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..io import InputError, iter_records, write_json
from ..models.fastdropout import speed_up_dropout
from ..torchutil import adamw, length_grouped_batches, peak_memory_mb
from .model import EncoderCRFTagger, encode_words, load_tokenizer
from .settings import ABLATIONS, VARIANTS, TrainSettings, variant_settings  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)


class GradientMasker:
    """Gradient masking: element-wise clipping at a running quantile of each tensor's gradient magnitude.

    For every parameter tensor ``p`` with gradient ``g`` at step ``t``::

        q_t   = quantile_q(|g|)                      (q = ``quantile``, on <= 65,536 sampled entries)
        tau_t = m * tau_{t-1} + (1 - m) * q_t         (tau_1 = q_1; m = ``momentum``)
        g'    = sign(g) * min(|g|, tau_t)

    So the coordinates whose gradient is unusually large compared with that tensor's recent
    history (the high-sensitivity ones) are attenuated to the threshold; the rest pass unchanged
    (``g'`` is ``g`` clamped to ``[-tau_t, tau_t]``, one in-place pass). The quantile is linear
    interpolation between order statistics, as ``torch.quantile``, read off a top-k of the sample.
    Returns the share of the (sampled) entries above the threshold, for logging.
    """

    def __init__(self, params, quantile: float = 0.99, momentum: float = 0.9, sample: int = 65536, seed: int = 0):
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"grad_mask_quantile must be in (0, 1), got {quantile}")
        self.params = [p for p in params if p.requires_grad]
        self.quantile, self.momentum, self.sample = quantile, momentum, sample
        self.tau: dict[int, torch.Tensor] = {}
        self.gen = torch.Generator().manual_seed(seed)

    def _quantile(self, mag: torch.Tensor) -> torch.Tensor:
        """``torch.quantile(mag, q)`` (linear interpolation) from the largest entries only."""
        pos = self.quantile * (mag.numel() - 1)
        lo = math.floor(pos)
        top = torch.topk(mag, mag.numel() - lo, sorted=True).values  # top[-1] is order statistic lo
        low, high = top[-1], top[-2] if len(top) > 1 else top[-1]
        return low + (pos - lo) * (high - low)

    @torch.no_grad()
    def __call__(self) -> float:
        above = seen = 0
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            flat = p.grad.detach().flatten()
            if flat.numel() > self.sample:
                flat = flat[torch.randint(flat.numel(), (self.sample,), generator=self.gen).to(flat.device)]
            mag = flat.abs().float()
            q = self._quantile(mag)
            tau = q if i not in self.tau else self.momentum * self.tau[i] + (1 - self.momentum) * q
            self.tau[i] = tau
            above += int((mag > tau).sum())
            seen += mag.numel()
            t = float(tau)
            p.grad.clamp_(-t, t)
        return above / max(seen, 1)


def consistency_kl(clean_em: torch.Tensor, adv_em: torch.Tensor, pairs: list[tuple[int, int, int]]) -> torch.Tensor:
    """Mean KL(p_clean || p_adv) over aligned words ``(batch row, clean word, adv word)``; clean side detached."""
    if not pairs:
        return adv_em.new_zeros(())
    b, ci, ai = (torch.tensor(x, device=adv_em.device) for x in zip(*pairs))
    target = F.log_softmax(clean_em[b, ci].detach().float(), dim=-1)
    pred = F.log_softmax(adv_em[b, ai].float(), dim=-1)
    return F.kl_div(pred, target, log_target=True, reduction="batchmean")


def load_rows(path: str | os.PathLike, label_ids: dict[str, int], adversarial: bool = False) -> list[dict]:
    """Read a corpus JSONL (format ``ner_sentences``, or ``ner_adversarial`` when ``adversarial``)
    and check that tokens, tags and word maps agree; errors name the file, row and field."""
    rows = []
    for i, row in iter_records(path, "ner_adversarial" if adversarial else "ner_sentences", allow_empty=adversarial):
        rows.append(row)
        if len(row["tokens"]) != len(row["tags"]):
            raise InputError(path, f"{len(row['tokens'])} tokens but {len(row['tags'])} tags", row=i, field="tags")
        bad = [t for t in row["tags"] if t not in label_ids]
        if bad:
            raise InputError(path, f"unknown tag {bad[0]!r} (labels: {list(label_ids)})", row=i, field="tags")
        if adversarial and len(row["word_map"]) != len(row["tokens"]):
            raise InputError(path, "word_map must have one entry per token", row=i, field="word_map")
    return rows


def _tag_tensor(rows: list[dict], label_ids: dict[str, int], width: int) -> torch.Tensor:
    out = torch.zeros(len(rows), width, dtype=torch.long)
    for b, row in enumerate(rows):
        ids = [label_ids[t] for t in row["tags"]][:width]
        out[b, :len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


def stratified_sample(rows: list[dict], n: int | None, seed: int = 0, key: str = "source") -> list[dict]:
    """Up to ``n`` rows, seeded, taking the sources in turn (so a source-sorted file stays balanced);
    the kept rows keep their file order. ``n`` None or >= len(rows): all rows."""
    if not n or n >= len(rows):
        return list(rows)
    rng = random.Random(seed)
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault(str(r.get(key, "")), []).append(i)
    for idx in groups.values():
        rng.shuffle(idx)
    picked: list[int] = []
    queues = [groups[k] for k in sorted(groups)]
    while len(picked) < n:
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop())
    return [rows[i] for i in sorted(picked)]


def _training_data(train_path: str | os.PathLike, adv_path: str | os.PathLike | None, label_ids: dict[str, int],
                   s: TrainSettings) -> tuple[list[dict], dict[str, list[dict]], list[dict]]:
    """``(clean rows, perturbed variants per clean id, training pool)``.

    The pool is the clean rows, plus the variants as plain rows when they are used without the
    paired adversarial loss.
    """
    clean = stratified_sample(load_rows(train_path, label_ids), s.max_train_rows, s.seed)
    variants: dict[str, list[dict]] = {}
    if s.adv_samples:
        if adv_path is None:
            raise ValueError("adv_samples is on but no adversarial training file was given")
        clean_ids = {r["id"] for r in clean}
        for row in load_rows(adv_path, label_ids, adversarial=True):
            if row["orig_id"] in clean_ids:
                variants.setdefault(row["orig_id"], []).append(row)
    pool = list(clean)
    if s.adv_samples and not s.adv_loss:  # variants as plain extra training data
        pool += [v for vs in variants.values() for v in vs]
    return clean, variants, pool


def _make_optimizer(model: EncoderCRFTagger, s: TrainSettings) -> torch.optim.AdamW:
    """AdamW with the encoder at ``lr`` (no decay on biases and norms) and head+CRF at ``head_lr``."""
    head_params = list(model.head.parameters()) + list(model.crf.parameters())
    head_ids = {id(p) for p in head_params}
    enc_params = [p for p in model.parameters() if id(p) not in head_ids]
    return adamw([
        {"params": [p for p in enc_params if p.ndim >= 2], "lr": s.lr, "weight_decay": s.weight_decay},
        {"params": [p for p in enc_params if p.ndim < 2], "lr": s.lr, "weight_decay": 0.0},
        {"params": head_params, "lr": s.head_lr, "weight_decay": 0.0},
    ])


@dataclass
class _Run:
    """One tagger training run: model, data and the counters the metrics report."""

    model: EncoderCRFTagger
    tokenizer: object
    label_ids: dict[str, int]
    settings: TrainSettings
    device: str
    variants: dict[str, list[dict]]
    rng: random.Random
    use_bf16: bool = False
    n_tokens: int = 0
    n_words: int = 0
    val_outputs: list | None = None       # emissions of the last validation pass
    best_val_outputs: list | None = None  # ... and of the best epoch's (reused by the temperature fit)

    @property
    def paired(self) -> bool:
        """Whether clean rows are paired with a perturbed variant (adversarial or consistency loss)."""
        s = self.settings
        return s.adv_samples and (s.adv_loss or s.consistency_loss)

    @property
    def mixed(self) -> bool:
        """Whether every batch's loss is ``alpha * L_clean + beta * L_adv`` (Algorithm 1)."""
        return self.settings.adv_samples and self.settings.adv_loss

    def forward(self, rows: list[dict]):
        """``(encoded batch, fp32 emissions, loss)`` of ``rows``; counts their subword tokens and words."""
        batch = encode_words(self.tokenizer, [r["tokens"] for r in rows], self.settings.max_length).to(self.device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.use_bf16):
            em = self.model.emissions(batch)
        em = em.float()
        tags = _tag_tensor(rows, self.label_ids, em.size(1)).to(self.device)
        self.n_tokens += int(batch.attention_mask.sum())
        self.n_words += int(batch.word_mask.sum())
        return batch, em, self.model.loss(em, tags, batch.word_mask)


def _variants_of(run: _Run, rows: list[dict]) -> tuple[list[dict], list[int]]:
    """One random perturbed variant of each clean row that has one, and the rows' batch positions."""
    adv_rows, owners = [], []
    for b, row in enumerate(rows):
        if row["id"] in run.variants and "orig_id" not in row:
            adv_rows.append(run.rng.choice(run.variants[row["id"]]))
            owners.append(b)
    return adv_rows, owners


def _batch_loss(run: _Run, rows: list[dict]) -> tuple[torch.Tensor, dict]:
    """Loss of one mini-batch (see the module docstring) and its parts, for the loss history."""
    s = run.settings
    batch, em, loss_clean = run.forward(rows)
    parts = {"clean": loss_clean.item()}
    loss = s.alpha * loss_clean if run.mixed else loss_clean
    adv_rows, owners = _variants_of(run, rows) if run.paired else ([], [])
    if run.mixed:
        parts["adv"] = 0.0
    if not adv_rows:
        return loss, parts
    abatch, aem, loss_adv = run.forward(adv_rows)
    if run.mixed:
        loss = loss + s.beta * loss_adv
        parts["adv"] = loss_adv.item()
    if s.consistency_loss:
        pairs = [(k, ci, ai) for k, (owner, arow) in enumerate(zip(owners, adv_rows))
                 for ai, ci in enumerate(arow["word_map"])
                 if ci >= 0 and ai < abatch.n_kept[k] and ci < batch.n_kept[owner]]
        kl = consistency_kl(em[owners], aem, pairs)
        loss = loss + s.consistency * kl
        parts["kl"] = kl.item()
    return loss, parts


def _train_epoch(run: _Run, pool: list[dict], optim, sched, masker, epoch: int, progress) -> list[dict]:
    """One pass of length-grouped mini-batches; returns its per-step loss history."""
    s = run.settings
    run.model.train()
    history = []
    for batch_idx in length_grouped_batches([len(r["tokens"]) for r in pool], s.batch_size, run.rng):
        loss, parts = _batch_loss(run, [pool[j] for j in batch_idx])
        optim.zero_grad(set_to_none=True)
        loss.backward()
        if masker is not None:
            parts["masked_share"] = masker()
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), s.max_grad_norm)
        optim.step()
        sched.step()
        history.append({"epoch": epoch, "loss": loss.item(), **parts})
        progress.update(1)
        progress.set_postfix(loss=f"{history[-1]['loss']:.3f}")
    return history


@torch.no_grad()
def _val_outputs(run: _Run, rows: list[dict]) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(fp32 emissions, word mask, gold tag ids)`` of the validation rows, in eval mode, batched."""
    run.model.eval()
    out = []
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["tokens"]))
    for k in range(0, len(order), run.settings.batch_size):
        chunk = [rows[i] for i in order[k:k + run.settings.batch_size]]
        batch = encode_words(run.tokenizer, [r["tokens"] for r in chunk], run.settings.max_length).to(run.device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=run.use_bf16):
            em = run.model.emissions(batch).float()
        out.append((em, batch.word_mask, _tag_tensor(chunk, run.label_ids, em.size(1)).to(run.device)))
    return out


def _word_entities(tags: list[str]) -> list[dict]:
    from .metrics import strict_word_spans

    return [{"start": a, "end": b, "type": t} for a, b, t in strict_word_spans(tags)]


@torch.no_grad()
def validate(run: _Run, rows: list[dict]) -> dict:
    """Strict entity-level F1 (word spans, Viterbi paths; words cut off by ``max_length`` count as O)
    and mean loss of the model on the validation rows."""
    from .metrics import span_scores
    from .model import viterbi_decode

    labels = run.model.labels
    gold, pred, loss = [], [], 0.0
    run.val_outputs = _val_outputs(run, rows)
    for em, mask, tags in run.val_outputs:
        loss += float(run.model.loss(em, tags, mask)) * em.size(0)
        for b, path in enumerate(viterbi_decode(run.model.crf, em, mask)):
            gold.append(_word_entities([labels[int(t)] for t in tags[b, :len(path)]]))
            pred.append(_word_entities([labels[t] for t in path]))
    return {"val_f1": round(span_scores(gold, pred)["ALL"]["f1"], 4), "val_loss": round(loss / max(len(rows), 1), 4)}


def _run_epochs(run: _Run, pool: list[dict], val_rows: list[dict], optim, sched, total_steps: int,
                name: str) -> tuple[list[dict], list[dict]]:
    """Up to ``epochs`` passes; with validation rows, each epoch is scored (val F1, then val loss
    breaking ties), the best epoch's weights are restored at the end, and training stops after
    ``patience`` epochs without improvement (``patience`` 0: never early). Returns the per-step
    loss history and the learning curve (per epoch: train loss, val F1/loss, seconds)."""
    from tqdm.auto import tqdm

    s = run.settings
    masker = GradientMasker(run.model.parameters(), s.grad_mask_quantile, s.grad_mask_momentum, seed=s.seed) \
        if s.grad_mask else None
    history, curve = [], []
    best_key, best_state, stale = None, None, 0
    progress = tqdm(total=total_steps, desc=f"train {name}", mininterval=5)
    for epoch in range(s.epochs):
        t0 = time.perf_counter()
        steps = _train_epoch(run, pool, optim, sched, masker, epoch, progress)
        history += steps
        point = {"epoch": epoch + 1, "train_loss": round(sum(h["loss"] for h in steps) / max(len(steps), 1), 4),
                 "train_seconds": round(time.perf_counter() - t0, 2)}
        if val_rows:
            t1 = time.perf_counter()
            point.update(validate(run, val_rows), val_seconds=round(time.perf_counter() - t1, 2))
            key = (point["val_f1"], -point["val_loss"])
            if best_key is None or key > best_key:
                best_key, stale = key, 0
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in run.model.state_dict().items()}
                run.best_val_outputs = run.val_outputs
            else:
                stale += 1
        point["seconds"] = round(time.perf_counter() - t0, 2)
        curve.append(point)
        log.info("epoch %d: %s", epoch + 1, point)
        if val_rows and s.patience and stale >= s.patience:
            log.info("early stop after epoch %d: val F1 has not improved for %d epochs", epoch + 1, stale)
            break
    progress.close()
    if best_state is not None:
        run.model.load_state_dict(best_state)
    run.model.eval()
    return history, curve


def _metrics(run: _Run, history: list[dict], curve: list[dict], seconds: float, steps_per_epoch: int,
             clean: list[dict]) -> dict:
    """The ``train_metrics.json`` of a finished run (``curve``: the per-epoch learning curve)."""
    s = run.settings
    first = history[:steps_per_epoch]
    last = history[-steps_per_epoch:] if history else []
    scored = [p for p in curve if "val_f1" in p]
    best = max(scored, key=lambda p: (p["val_f1"], -p["val_loss"])) if scored else None
    return {
        "seconds": round(seconds, 2),
        "steps": len(history),
        "epochs": len(curve),
        "max_epochs": s.epochs,
        "patience": s.patience,
        "best_epoch": best["epoch"] if best else len(curve),
        "best_val_f1": best["val_f1"] if best else None,
        "stopped_early": len(curve) < s.epochs,
        "seconds_per_epoch": round(sum(p["seconds"] for p in curve) / max(len(curve), 1), 2),
        "curve": curve,
        "train_sentences": len(clean),
        "adversarial_variants": sum(len(v) for v in run.variants.values()),
        "subword_tokens_seen": run.n_tokens,
        "tokens_per_s": round(run.n_tokens / max(seconds, 1e-9), 1),
        "words_per_s": round(run.n_words / max(seconds, 1e-9), 1),
        "peak_memory_mb": round(peak_memory_mb(run.device), 1),
        "device": run.device,
        "dtype": "bf16" if run.use_bf16 else "fp32",
        "first_epoch_loss": round(sum(h["loss"] for h in first) / max(len(first), 1), 4),
        "final_epoch_loss": round(sum(h["loss"] for h in last) / max(len(last), 1), 4),
        "settings": dataclasses.asdict(s),
    }


def calibrate(run: _Run, val_rows: list[dict]) -> dict:
    """Fit the temperature of the confidences on the validation rows (:mod:`tinysec.ner.calibration`)
    and return ``calibration.json``: T, how it was fitted, and the validation NLL and entity-level
    ECE before (T = 1) and after."""
    from .calibration import ECE_BINS, fit_temperature, gold_nll

    outputs = run.best_val_outputs or _val_outputs(run, val_rows)  # the restored best epoch's emissions
    temperature = fit_temperature(run.model.crf, outputs)
    before, after = _val_ece(run, outputs, 1.0), _val_ece(run, outputs, temperature)
    return {"temperature": round(temperature, 4), "fit": "minimum of the gold-tag marginal NLL on the validation set",
            "val_sentences": len(val_rows), "val_entities": before["entities"], "ece_bins": ECE_BINS,
            "val_nll_before": round(gold_nll(run.model.crf, outputs, 1.0), 4),
            "val_nll_after": round(gold_nll(run.model.crf, outputs, temperature), 4),
            "val_ece_before": before["ece"], "val_ece_after": after["ece"]}


@torch.no_grad()
def _val_ece(run: _Run, outputs, temperature: float) -> dict:
    """Entity-level ECE of the Viterbi entities of ``outputs`` with marginals at ``temperature``."""
    from .calibration import expected_calibration_error
    from .model import crf_marginals, viterbi_decode
    from .postprocess import path_entities

    labels = run.model.labels
    conf, correct = [], []
    for em, mask, tags in outputs:
        marg = crf_marginals(run.model.crf, em, mask, temperature)
        for b, path in enumerate(viterbi_decode(run.model.crf, em, mask)):
            gold = {(e["start"], e["end"], e["type"]) for e in _word_entities([labels[int(t)] for t in tags[b, :len(path)]])}
            probs = [float(marg[b, w, k]) for w, k in enumerate(path)]
            for a, e, typ, c in path_entities([labels[k] for k in path], probs):
                conf.append(min(max(c, 0.0), 1.0))
                correct.append((a, e, typ) in gold)
    ece = expected_calibration_error(conf, correct)
    return {"ece": None if ece is None else round(ece, 4), "entities": len(conf)}


def train_tagger(encoder_path: str | os.PathLike, train_path: str | os.PathLike, out_dir: str | os.PathLike,
                 labels: list[str], settings: TrainSettings, adv_path: str | os.PathLike | None = None,
                 device: str = "cpu", meta: dict | None = None, val_path: str | os.PathLike | None = None) -> dict:
    """Train one tagger and save it to ``out_dir`` (with ``train_metrics.json``); returns the metrics.

    With ``val_path`` (a corpus JSONL) training stops early on validation F1 and keeps the best
    epoch (:func:`_run_epochs`), and a confidence temperature is fitted on the same rows and saved
    as ``calibration.json``; without it every epoch runs and the confidences stay uncalibrated."""
    from transformers import get_linear_schedule_with_warmup

    s = settings
    random.seed(s.seed)
    torch.manual_seed(s.seed)
    label_ids = {t: i for i, t in enumerate(labels)}
    clean, variants, pool = _training_data(train_path, adv_path, label_ids, s)
    val_rows = stratified_sample(load_rows(val_path, label_ids), s.max_val_rows, s.seed) if val_path else []
    model = EncoderCRFTagger.from_encoder(encoder_path, labels, s.attention_dropout, s.hidden_dropout).to(device)
    speed_up_dropout(model)
    run = _Run(model, load_tokenizer(encoder_path), label_ids, s, device, variants, random.Random(s.seed),
               use_bf16=device.startswith("cuda") and torch.cuda.is_bf16_supported())
    optim = _make_optimizer(model, s)
    steps_per_epoch = math.ceil(len(pool) / s.batch_size)
    total_steps = max(1, steps_per_epoch * s.epochs)
    sched = get_linear_schedule_with_warmup(optim, int(s.warmup_ratio * total_steps), total_steps)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    start = time.perf_counter()
    history, curve = _run_epochs(run, pool, val_rows, optim, sched, total_steps, Path(out_dir).name)
    seconds = time.perf_counter() - start
    model.save(out_dir, run.tokenizer, {"max_length": s.max_length, "settings": dataclasses.asdict(s), **(meta or {})})
    if val_rows:
        from .calibration import CALIBRATION_FILE

        write_json(Path(out_dir) / CALIBRATION_FILE, calibrate(run, val_rows))
    metrics = _metrics(run, history, curve, seconds, steps_per_epoch, clean)
    write_json(Path(out_dir) / "train_metrics.json", metrics)
    log.info("trained %s in %.1fs (%d epochs, %d steps, %.0f tokens/s)", out_dir, seconds, len(curve), len(history),
             metrics["tokens_per_s"])
    return metrics


def train_tuned(encoder_path: str | os.PathLike, train_path: str | os.PathLike, out_dir: str | os.PathLike,
                labels: list[str], settings: TrainSettings, dropout_sweep: list[list[float]] | None = None,
                **kwargs) -> dict:
    """:func:`train_tagger`, or with ``dropout_sweep`` (``[attention, hidden]`` pairs) one training per
    pair, keeping the tagger with the best validation F1 (the first pair wins ties) in ``out_dir``; its
    ``train_metrics.json`` gets ``dropout_sweep``: every pair's best validation F1 and seconds, and the
    chosen pair. A sweep needs ``val_path``."""
    import shutil

    if not dropout_sweep:
        return train_tagger(encoder_path, train_path, out_dir, labels, settings, **kwargs)
    if not kwargs.get("val_path"):
        raise ValueError("ner.robust.dropout_sweep needs a validation set to choose the dropout")
    out = Path(out_dir)
    scratch = out.parent / f".{out.name}.dropout-sweep"
    shutil.rmtree(scratch, ignore_errors=True)
    tried = []
    for attention, hidden in dropout_sweep:
        cand = scratch / f"{attention:g}-{hidden:g}"
        s = dataclasses.replace(settings, attention_dropout=attention, hidden_dropout=hidden)
        m = train_tagger(encoder_path, train_path, cand, labels, s, **kwargs)
        tried.append({"attention_dropout": attention, "hidden_dropout": hidden, "best_val_f1": m["best_val_f1"],
                      "seconds": m["seconds"], "dir": cand, "metrics": m})
    best = max(tried, key=lambda t: t["best_val_f1"] or 0.0)  # max keeps the first of equals
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(str(best["dir"]), str(out))
    shutil.rmtree(scratch, ignore_errors=True)
    metrics = best["metrics"]
    metrics["dropout_sweep"] = {
        "candidates": [{k: v for k, v in t.items() if k not in ("dir", "metrics")} for t in tried],
        "chosen": [best["attention_dropout"], best["hidden_dropout"]], "criterion": "best validation F1"}
    write_json(out / "train_metrics.json", metrics)
    log.info("dropout sweep: chose attention %g / hidden %g of %d pairs", *metrics["dropout_sweep"]["chosen"], len(tried))
    return metrics
