"""What a producer sees: the scale, device, seed, model and a place to put claims and assets."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from explorer import jsonio

if TYPE_CHECKING:  # torch is imported when a figure is built, not when figures are only checked
    import torch

Scale = Literal["smoke", "full"]
T = TypeVar("T")


@dataclass
class FigureContext:
    """What a producer is given: read `scale`, `device`, `seed` and `model`; record claims and assets.

    The pipeline seeds Python, NumPy and torch with `seed` before calling the producer, and moves
    `out` (a staging folder) into place only when the producer returns a chart that compiles.
    """

    id: str
    scale: Scale
    device: "torch.device"
    seed: int
    model: str  # the model this run should use (the declared one, or `--model`)
    out: Path  # staging folder of this figure; the pipeline moves it into place on success
    claims: dict[str, Any] = field(default_factory=dict)
    show_progress: bool = True

    @property
    def smoke(self) -> bool:
        return self.scale == "smoke"

    def pick(self, smoke: T, full: T) -> T:
        """Choose a size by scale: `steps = ctx.pick(smoke=50, full=2000)`."""
        return smoke if self.smoke else full

    def claim(self, key: str, value: Any) -> Any:
        """Record a number the article states; tests assert it and pages quote it with {{ claim: id:key }}."""
        self.claims[key] = value
        return value

    def claim_subject(self, prefix: str, name: str) -> None:
        """Repeat the claims `{prefix}_X` as `model_X`, and `model` = `name`: the keys of sentences
        that hold for whichever model a reader's model switch shows. The published run names the
        model its page discusses first; a `--model` run names its own model, so the page can show
        that model's numbers in the same sentence. Call it after the prefix's claims are recorded."""
        start = f"{prefix}_"
        found = {f"model_{key[len(start):]}": value for key, value in self.claims.items() if key.startswith(start)}
        if not found:
            raise ValueError(f"figure {self.id}: no claims start with {start!r} to name as the model's")
        self.claims["model"] = name
        self.claims.update(found)

    def asset(self, relpath: str, obj: Any) -> str:
        """Write extra JSON (e.g. one file per playground configuration) beside the spec.

        Returns the path relative to the figure folder, which is the base URL data is loaded from.
        """
        if relpath.startswith("/") or ".." in Path(relpath).parts:
            raise ValueError(f"figure {self.id}: asset path {relpath!r} must stay inside the figure folder")
        jsonio.write_json(self.out / relpath, obj)
        return relpath

    def progress(self, iterable: Iterable[T], desc: str = "", total: int | None = None) -> Iterable[T]:
        """A progress bar over `iterable`, shown unless the build runs with --quiet."""
        from tqdm.auto import tqdm

        return tqdm(iterable, desc=f"{self.id} {desc}".strip(), total=total, leave=False, disable=not self.show_progress)
