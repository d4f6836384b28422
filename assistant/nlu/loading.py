"""Loading an NLU artifact of any format: the NLU's loader in the model registry."""

from __future__ import annotations

from pathlib import Path

from assistant.nlu.formats import JOINT_FORMAT, read_manifest
from assistant.nlu.heads import HeadsModel
from assistant.nlu.joint import JointModel


def load_model(path: Path) -> HeadsModel | JointModel:
    """Load and check an artifact completely (the manifest says which format); raise ArtifactError."""
    manifest = read_manifest(Path(path))
    if manifest["format"] == JOINT_FORMAT:
        return JointModel.load(Path(path), manifest)
    return HeadsModel.load(Path(path))
