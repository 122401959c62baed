"""Several datasets trained as one, as the paper's Tables 4 and 5 combine Bijie and Sichuan.

A sample of part ``bijie`` named ``df001`` is ``bijie.df001`` in the combination, so names
stay unique and say where a sample came from. Each part is split on its own, with the same
ratios and seed (:func:`emr_lib.training.run_data.run_datasets`), so every part is represented in
train, validation and test in its own proportion.
"""

from __future__ import annotations

from .base import SampleDataset

__all__ = ["CombinedDataset"]


class CombinedDataset(SampleDataset):
    """The samples of ``parts`` (label -> dataset) one after the other, named ``<label>.<name>``."""

    def __init__(self, parts: dict[str, SampleDataset]):
        self.parts = dict(parts)
        self.index = [(label, i) for label, dataset in self.parts.items() for i in range(len(dataset))]
        self.names = [f"{label}.{self.parts[label].names[i]}" for label, i in self.index]

    def read(self, index: int):
        label, i = self.index[index]
        return self.parts[label].read(i)

    def sample_digest(self, index: int) -> bytes:
        label, i = self.index[index]
        return self.parts[label].sample_digest(i)

    def part_group_of(self, label: str):
        """Part ``label``'s grouping of its names (e.g. tiles by scene), for the combined names, or None."""
        group_of = self.parts[label].group_of
        return None if group_of is None else lambda name: f"{label}.{group_of(name[len(label) + 1 :])}"

    def part_names(self, label: str) -> list[str]:
        """The combined names of part ``label``'s samples."""
        return [name for name, (part, _) in zip(self.names, self.index) if part == label]
