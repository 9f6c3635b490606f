"""Grounders (issue 19 §4): which entities a reasoning names are in the image.

- the clue-record grounder on real photos of the synthetic world: it accepts the
  clues drawn in each photo and rejects named clues that were not drawn;
- the text grounder (the offline fallback) accepts what the entity extractor finds;
- the detector grounder on tiny random-weight OWL-ViT, OWLv2 and Grounding DINO models
  built offline (a CLIP tokenizer from a byte-level vocabulary, a BERT word-piece one,
  written here): the plumbing only — one score per phrase, in [0, 1], the same whatever
  the batch size, empty rows skipped, the threshold applied — and a hub ID offline
  fails at once;
- our precision form of GLOBE's visual reward (``visual_precision``);
- distillation with the clue grounder drops the samples whose reasoning names an
  absent clue, with the reason ``entity not in the image``, and a rerun with another
  grounder re-grounds from the stored outputs without asking the teachers again.
"""

from __future__ import annotations

import json
import pickle
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

datasets = pytest.importorskip("datasets")

from georeason.datasets.synthetic import ClueRates, SyntheticData, generate_world  # noqa: E402
from georeason.images import load_image  # noqa: E402
from georeason.pipelines.distill import DistillConfig, DistillError, FilterConfig, decide, run_distill  # noqa: E402
from georeason.pipelines.distill.filters import DROP_REASONS  # noqa: E402
from georeason.rewards import get_reward  # noqa: E402
from georeason.rewards.entities import extract_entities  # noqa: E402
from georeason.rewards.grounding import (  # noqa: E402
    ClueGrounder,
    DetectorGrounder,
    GroundingError,
    TextGrounder,
    make_grounder,
)

N_IMAGES = 12


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SyntheticData]:
    out = tmp_path_factory.mktemp("grounding-world") / "world"
    # signs and landmarks drawn in about half the photos: some photos lack each clue
    rates = ClueRates(sign=0.5, landmark=0.5)
    data = generate_world(N_IMAGES, 2, image_size=56, seed=5, clue_rates=rates, out_dir=out)
    return out, data


def _photos(data: SyntheticData) -> list[dict[str, Any]]:
    ds = data.datasets["train"]
    return [{**ds[i], "clues": data.clues["train"][i]} for i in range(len(ds))]


def test_clue_grounder_accepts_drawn_clues_and_rejects_the_rest(world: tuple[Path, SyntheticData]) -> None:
    out, data = world
    g = make_grounder(f"clues:{out}")
    assert isinstance(g, ClueGrounder) and g.threshold == 0.5
    photos = _photos(data)
    places = data.world.places
    checked_absent = 0
    for p in photos:
        c, place = p["clues"], places[p["clues"].place]
        drawn = list(p["entities"])
        absent = []  # clues of this photo's own place that were not drawn in it
        for kind, phrase in (("sign", place.sign_phrase), ("landmark", place.landmark_phrase)):
            if c.locatable and not getattr(c, kind):
                absent.append(phrase)
        others = {q.sign_phrase for q in places} - {place.sign_phrase}
        other_sign = sorted(others)[0]  # a sign drawn nowhere in this photo
        phrases = [*drawn, *absent, other_sign, "palm trees"]
        (scores,) = g([p["image"]], [phrases], ids=[p["id"]])
        assert len(scores) == len(phrases)
        assert scores[: len(drawn)] == [1.0] * len(drawn), (p["id"], drawn)
        assert scores[len(drawn) :] == [0.0] * (len(phrases) - len(drawn)), (p["id"], phrases)
        checked_absent += len(absent)
        # the reasoning the world writes names exactly the drawn clues: all visible
        named = extract_entities(p["reasoning"])
        assert g([p["image"]], [named], ids=[p["id"]]) == [[1.0] * len(named)]
        # a head noun of a drawn clue counts; the clue-less photos show nothing
        if c.banner:
            assert g(None, [["banner"]], ids=[p["id"]]) == [[1.0]]
        if not c.locatable:
            assert drawn == [] and g(None, [["green meadow"]], ids=[p["id"]]) == [[0.0]]
    assert checked_absent >= 3  # the world has photos without their sign or landmark
    assert any(not p["clues"].locatable for p in photos)
    with pytest.raises(GroundingError, match="not in the clue records"):
        g(None, [["sign"]], ids=["someone-else-0001"])
    with pytest.raises(GroundingError, match="needs the photos' ids"):
        g(None, [["sign"]])


def test_world_json_holds_the_drawn_clues(world: tuple[Path, SyntheticData]) -> None:
    out, data = world
    meta = json.loads((out / "world.json").read_text())
    assert meta["drawn_clues"] == data.drawn_clues()
    ids = [*data.datasets["train"]["id"], *data.datasets["test"]["id"]]
    assert sorted(meta["drawn_clues"]) == sorted(ids)


def test_text_grounder_accepts_what_the_extractor_finds(world: tuple[Path, SyntheticData]) -> None:
    _, data = world
    texts = [p["reasoning"] for p in _photos(data)] + [
        "The street signs are written in Cyrillic script; a large Orthodox cathedral with golden domes, "
        "near the Bolshoi Theatre and a Coca-Cola billboard. This must be Moscow, Russia.",
    ]
    g = make_grounder("text")
    assert isinstance(g, TextGrounder) and not g.needs_image
    for text in texts:
        named = extract_entities(text)
        assert g(None, [named]) == [[1.0] * len(named)], text
    assert g(None, [["Moscow", "Russia", "Europe", "the view"]]) == [[0.0] * 4]


def test_grounder_specs_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("segment:x", "clues", "detector:", "text:x"):
        with pytest.raises(GroundingError):
            make_grounder(bad)
    with pytest.raises(GroundingError, match="does not exist"):
        make_grounder(f"clues:{tmp_path}")
    (tmp_path / "world.json").write_text("{}")
    with pytest.raises(GroundingError, match="no drawn_clues"):
        make_grounder(f"clues:{tmp_path}")
    with pytest.raises(DistillError, match="unknown grounder"):
        FilterConfig(grounder="segment:x")
    with pytest.raises(DistillError, match="grounding_threshold"):
        FilterConfig(grounding_threshold=1.5)
    assert FilterConfig().visible_at() == 0.5
    assert FilterConfig(grounder="detector:x").visible_at() == 0.1
    assert FilterConfig(grounder="detector:x", grounding_threshold=0.3).visible_at() == 0.3
    # offline, a hub ID that is not cached fails at once with how to get it
    from georeason.models.loading import ModelNotFoundError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match="offline"):
        make_grounder("detector:georeason-test/owlv2-that-is-not-cached")
    assert time.perf_counter() - t0 < 10


# ---------------------------------------------------------------------------
# the detector grounder on tiny random-weight OWL models
# ---------------------------------------------------------------------------


def _byte_vocab(folder: Path) -> None:
    """A CLIP byte-level BPE vocabulary (every byte, alone and word-final) and no merges."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs, extra = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    chars = [chr(c) for c in cs]
    # the special tokens last: OWL's text model reads the end of text at the highest id
    vocab = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")


def build_tiny_owl(out: Path, kind: str = "owlvit") -> Path:
    """A random-weight OWL-ViT (or OWLv2) and its processor, saved as a model folder."""
    import torch
    import transformers as tf

    _byte_vocab(out / "tok")
    tok = tf.CLIPTokenizer.from_pretrained(out / "tok", pad_token="!", model_max_length=16)
    n = len(tok)
    prefix = "Owlv2" if kind == "owlv2" else "OwlViT"
    size = {"height": 32, "width": 32}
    image_proc = getattr(tf, f"{prefix}ImageProcessor")(
        size=size, **({} if kind == "owlv2" else {"crop_size": size})
    )
    processor = getattr(tf, f"{prefix}Processor")(image_processor=image_proc, tokenizer=tok)
    config = getattr(tf, f"{prefix}Config")(
        text_config={
            "vocab_size": n, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
            "num_attention_heads": 2, "max_position_embeddings": 16, "bos_token_id": n - 2,
            "eos_token_id": n - 1, "pad_token_id": 0,
        },
        vision_config={
            "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
            "image_size": 32, "patch_size": 8,
        },
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    model = getattr(tf, f"{prefix}ForObjectDetection")(config).eval()
    with torch.no_grad():  # random logit scales saturate the sigmoid: unit scale, no shift, scores apart
        for head in (model.class_head.logit_scale, model.class_head.logit_shift):
            head.weight.zero_()
            head.bias.zero_()
    folder = out / kind
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_tiny_grounding_dino(out: Path) -> Path:
    """A random-weight Grounding DINO (Swin + BERT, a word-piece vocabulary written here)."""
    import torch
    import transformers as tf

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "-", *"abcdefghijklmnopqrstuvwxyz"]
    words += ["red", "circle", "sign", "dome", "landmark", "palm", "trees", "banner", "green", "meadow"]
    (out / "tok").mkdir(parents=True, exist_ok=True)
    (out / "tok" / "vocab.txt").write_text("\n".join(words) + "\n")
    tok = tf.BertTokenizer.from_pretrained(out / "tok")
    image_proc = tf.GroundingDinoImageProcessor(size={"shortest_edge": 32, "longest_edge": 32})
    processor = tf.GroundingDinoProcessor(image_processor=image_proc, tokenizer=tok)
    swin = tf.SwinConfig(
        image_size=32,
        patch_size=4,
        embed_dim=8,
        depths=[1, 1],
        num_heads=[1, 1],
        window_size=2,
        out_features=["stage1", "stage2"],
    )
    bert = tf.BertConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    config = tf.GroundingDinoConfig(
        backbone_config=swin, text_config=bert, d_model=32, encoder_layers=1, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        num_queries=10, num_feature_levels=2, encoder_n_points=1, decoder_n_points=1, max_text_len=32,
        use_timm_backbone=False, use_pretrained_backbone=False, backbone=None,
    )  # fmt: skip
    torch.manual_seed(0)
    model = tf.GroundingDinoForObjectDetection(config).eval()
    folder = out / "grounding-dino"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["owlvit", "owlv2", "grounding-dino"])
def tiny_detector(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    out = tmp_path_factory.mktemp("detector")
    return (
        build_tiny_grounding_dino(out)
        if request.param == "grounding-dino"
        else build_tiny_owl(out, request.param)
    )


@pytest.fixture(scope="module", params=["owlvit", "owlv2"])
def tiny_owl(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("transformers")
    return build_tiny_owl(tmp_path_factory.mktemp("owl"), request.param)


def test_detector_grounder_plumbing(tiny_detector: Path, world: tuple[Path, SyntheticData]) -> None:
    _, data = world
    photos = _photos(data)[:5]
    images = [p["image"] for p in photos]
    images[2] = images[2].resize((40, 60))  # unequal sizes in one batch (Grounding DINO pads them)
    phrases = [
        ["red circle sign", "dome landmark", "palm trees"],
        [],
        ["banner"],
        ["a", "b", "c", "d"],
        ["sign"],
    ]
    g1 = make_grounder(f"detector:{tiny_detector}", device="cpu", batch_size=1)
    g3 = DetectorGrounder(str(tiny_detector), device="cpu", batch_size=3)
    assert isinstance(g1, DetectorGrounder) and g1.threshold == 0.1
    s1 = g1(images, phrases)
    s3 = g3(images, phrases)
    assert [len(r) for r in s1] == [len(r) for r in phrases]  # one score per phrase, [] for none
    assert all(0.0 <= x <= 1.0 for r in s1 for x in r)
    for a, b in zip(s1, s3, strict=True):  # batching (and padding of the queries) changes nothing
        assert a == pytest.approx(b, abs=1e-5)
    # the images may come as paths, bytes, datasets dicts or lists of one
    raw = data.datasets["train"].cast_column("image", datasets.Image(decode=False))[:2]["image"]
    again = g1([raw[0], [raw[1]]], phrases[:2])
    assert again[0] == pytest.approx(s1[0], abs=1e-5) and again[1] == []
    with pytest.raises(GroundingError, match="needs the images"):
        g1(None, [["sign"]])
    with pytest.raises(GroundingError, match="2 images for 1"):
        g1(images[:2], [["sign"]])


def test_threshold_decides_what_is_visible(tiny_owl: Path, world: tuple[Path, SyntheticData]) -> None:
    """The cutoff is applied to the grounder's scores: by distillation and by the reward."""
    _, data = world
    p = _photos(data)[0]
    g = DetectorGrounder(str(tiny_owl), device="cpu")
    reasoning = "A red circle sign, a dome landmark, palm trees and a blue-white-red banner."
    completion = f"<think>{reasoning}</think><answer>country: X\ncity: Y</answer>"
    named = extract_entities(reasoning)
    (scores,) = g([p["image"]], [named])
    assert len(scores) == len(named) == 4
    cutoffs = sorted({0.0, *scores} | ({min(1.0, max(scores) + 1e-6)} if max(scores) < 1 else set()))
    wants = [sum(x >= c for x in scores) / len(scores) for c in cutoffs]
    assert wants[0] == 1.0 and min(wants) < 1.0  # some cutoff makes a named thing invisible
    spec = f"detector:{tiny_owl}"
    for cutoff, want in zip(cutoffs, wants, strict=True):
        prec = get_reward("visual_precision", grounder=g, threshold=cutoff)
        assert prec([completion], image=[p["image"]]) == [pytest.approx(want)]
        rec = _record([named], {"grounder": spec, "scores": [scores]})
        kept = decide(rec, FilterConfig(grounder=spec, grounding_threshold=cutoff)).kept
        assert kept == (want == 1.0)


def _record(entities: list[list[str]], grounding: dict[str, Any] | None) -> dict[str, Any]:
    truth = {"country_code": "FR", "country": "France", "city": "Paris", "lat": 48.85, "lon": 2.35}
    teachers = [
        {"name": f"t{k}", "completion": "x", "error": None, "p_yes": 0.9, "country": "France",
         "country_code": "FR", "city": "Paris", "reasoning": "r", "distance_km": float(k),
         "geocode_level": "city", "entities": e}
        for k, e in enumerate(entities)
    ]  # fmt: skip
    rec: dict[str, Any] = {"id": "x", "truth": truth, "teachers": teachers}
    if grounding is not None:
        rec["grounding"] = grounding
    return rec


def test_decide_with_grounding() -> None:
    named = [["red sign", "palm trees"], ["red sign"]]
    g = {"grounder": "clues:w", "scores": [[1.0, 0.0], [1.0]]}
    cfg = FilterConfig(grounder="clues:w")
    # the closest teacher names an absent thing: the other's grounded reasoning is kept
    d = decide(_record(named, g), cfg)
    assert d.kept and d.chosen == 1
    g2 = {"grounder": "clues:w", "scores": [[1.0, 0.0], [0.0]]}
    d2 = decide(_record(named, g2), cfg)
    assert (d2.kept, d2.reason) == (False, "entity not in the image")
    assert DROP_REASONS[-1] == "entity not in the image"
    assert decide(_record(named, g2), FilterConfig()).kept  # the default text grounder drops nothing
    with pytest.raises(DistillError, match="no entity scores"):
        decide(_record(named, None), cfg)
    with pytest.raises(DistillError, match="no entity scores"):  # scores of another grounder
        decide(_record(named, g), FilterConfig(grounder="clues:other"))


# ---------------------------------------------------------------------------
# visual_precision: ours, beside GLOBE's recall form
# ---------------------------------------------------------------------------


def _answer(reasoning: str, country: str = "France", city: str = "Paris") -> str:
    return f"<think>{reasoning}</think><answer>country: {country}\ncity: {city}</answer>"


def test_visual_precision_with_the_clue_records(world: tuple[Path, SyntheticData]) -> None:
    out, data = world
    photos = [p for p in _photos(data) if p["entities"]][:4]
    prec = get_reward("visual_precision", grounder=f"clues:{out}")
    assert prec.__name__ == "visual_precision"
    ids = [p["id"] for p in photos]
    exact = [_answer(p["reasoning"]) for p in photos]
    assert prec(exact, id=ids, image=[p["image"] for p in photos]) == [1.0] * len(photos)
    # one made-up clue among the drawn ones costs its share; recall (GLOBE's) does not see it
    padded = [_answer(p["reasoning"] + " I also see palm trees.") for p in photos]
    got = prec(padded, id=ids)
    want = [len(p["entities"]) / (len(p["entities"]) + 1) for p in photos]
    assert got == pytest.approx(want)
    recall = get_reward("globe_visual")(padded, entities=[p["entities"] for p in photos])
    assert recall == [1.0] * len(photos)
    assert prec([_answer("Nothing to see."), "no think tag"], id=ids[:2]) == [None, None]
    # a spec survives pickling (dataloader workers); the grounder is made again where needed
    again = pickle.loads(pickle.dumps(prec))
    assert again(padded, id=ids) == pytest.approx(want)
    with pytest.raises(ValueError, match="needs a grounder"):
        get_reward("visual_precision")


# ---------------------------------------------------------------------------
# distillation with the clue grounder
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_distill_drops_reasoning_that_names_an_absent_clue(
    world: tuple[Path, SyntheticData], tmp_path: Path
) -> None:
    from test_distill import FixedAnswers, _handler, image_key  # tests/test_distill.py's loopback teachers

    out_world, data = world
    photos = _photos(data)
    for p in photos:
        p["key"] = image_key(load_image(p["image"]))
    # two right teachers; "b" (the second) adds a made-up clue on odd rows, "a" on rows divisible by 3
    state = FixedAnswers()
    state.answers = {"a": {}, "b": {}}
    for i, p in enumerate(photos):
        for name, extra in (("a", i % 3 == 0), ("b", i % 2 == 1)):
            text = p["reasoning"] + (" I also see palm trees." if extra else "")
            state.answers[name][p["key"]] = (_answer(text, p["country"], p["city"]), 0.9)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        teachers = [f"{m}=openai:{url}:{m}" for m in ("a", "b")]
        run = tmp_path / "run"
        base = run_distill(out_world, run, DistillConfig(teachers=teachers, batch_size=5), progress=False)
        assert base.n_kept == N_IMAGES and base.dropped == {}  # the text grounder drops nothing
        n_calls = len(state.calls)

        # rerun with the clue grounder: grounded from the stored outputs, nobody asked again
        cfg = DistillConfig(
            teachers=teachers, batch_size=5, filters=FilterConfig(grounder=f"clues:{out_world}")
        )
        s = run_distill(out_world, run, cfg, progress=False)
        assert len(state.calls) == n_calls and s.n_new == 0
        both = [i for i in range(N_IMAGES) if i % 3 == 0 and i % 2 == 1]
        assert s.dropped == {"entity not in the image": len(both)}
        assert json.loads((run / "summary.json").read_text())["dropped"] == s.dropped
        recs = {r["id"]: r for r in map(json.loads, (run / "records.jsonl").read_text().splitlines())}
        ds = datasets.load_from_disk(str(run / "dataset"))["train"]
        chosen = dict(zip(ds["id"], ds["teacher"], strict=True))
        for i, p in enumerate(photos):
            rec = recs[p["id"]]
            assert rec["grounding"]["grounder"] == f"clues:{out_world}"
            a_bad, b_bad = i % 3 == 0, i % 2 == 1
            for t, scores, bad in zip(
                rec["teachers"], rec["grounding"]["scores"], (a_bad, b_bad), strict=True
            ):
                assert len(scores) == len(t["entities"])
                assert (0.0 in scores) == bad, (i, t["name"], t["entities"], scores)
            if a_bad and b_bad:
                assert p["id"] not in chosen
            else:  # the kept reasoning names only drawn clues
                assert chosen[p["id"]] == ("b" if a_bad else "a")

        # a fresh run with the grounder grounds as it goes and decides alike
        fresh = run_distill(out_world, tmp_path / "fresh", cfg, progress=False)
        assert fresh.dropped == s.dropped and fresh.n_kept == s.n_kept
        first = json.loads((tmp_path / "fresh" / "records.jsonl").read_text().splitlines()[0])
        assert first["decision"]["reason"] == ("entity not in the image" if 0 in both else None)
    finally:
        httpd.shutdown()
        httpd.server_close()
