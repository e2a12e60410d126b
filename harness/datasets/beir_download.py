"""Named BEIR datasets fetched with BEIR's own downloader when they are not under the data root."""

from __future__ import annotations

from pathlib import Path

from llara_bench.harness.datasets.downloads import DownloadRefused, refusal
from llara_bench.harness.errors import LlaraBenchError
from llara_bench.models.files import move_into_place, scratch_beside

# The 18 BEIR datasets (BEIR's README); the public ones download as <name>.zip from BEIR's host.
BEIR_DATASETS = (
    "msmarco", "trec-covid", "nfcorpus", "bioasq", "nq", "hotpotqa", "fiqa", "signal1m", "trec-news",
    "robust04", "arguana", "webis-touche2020", "cqadupstack", "quora", "dbpedia-entity", "scidocs",
    "fever", "climate-fever", "scifact",
)
NOT_PUBLIC = {"bioasq", "signal1m", "trec-news", "robust04"}  # need their own licences/reproduction
BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"


def download_beir(name: str, target_root: Path) -> Path:
    """Download and unzip a named BEIR dataset into ``target_root/<name>`` with beir.util, once: a folder
    there is a finished download (it only appears whole)."""
    final = target_root / name
    if final.is_dir():
        return final
    if name in NOT_PUBLIC:
        raise LlaraBenchError(f"BEIR dataset {name!r} is not publicly downloadable; build it in BEIR layout "
                              "yourself and put it under the data root")
    reason = refusal()
    if reason:
        raise DownloadRefused(f"BEIR dataset {name!r} is not under the data root and {reason}; pass --data-root "
                              "with a folder holding it")
    from beir import util

    # beir.util writes the zip and the folder in place; work in a scratch folder and move the
    # finished folder in, so an interrupted download leaves nothing half-written under the root.
    with scratch_beside(final) as scratch:
        try:
            folder = util.download_and_unzip(BEIR_URL.format(name=name), str(scratch))
        except OSError as exc:  # requests' errors derive from OSError
            raise LlaraBenchError(f"could not download BEIR dataset {name!r}: {exc}. Offline? Put the folder "
                                  "under --data-root instead") from exc
        move_into_place(Path(folder), final, existing="keep")
    return final
