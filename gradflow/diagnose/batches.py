"""The rule on what the training batches hold: class labels that arrive one class at a time.

DataLoader shuffles only when asked (``shuffle=False`` is its default), and many datasets are stored
class by class (torchvision's ImageFolder, a tensor sorted by label). Read in that order, each stretch
of steps shows the model a single class: it learns to answer that class and forgets the others, and
the validation accuracy sits near chance. Nothing in the gradients says why (before this rule, such a
loop got NOT_LEARNING blamed on the learning rate), but the targets passed to ``rec.step(targets=y)``
do: the recorder counts the distinct labels of each recorded batch.
"""
from __future__ import annotations

from .evidence import Evidence
from .finding import Finding

MIN_CLASSES = 5  # fewer classes than this: a batch of one or two classes can happen by chance
ONE_SIDED = 2  # at most this many classes in a batch of 16 or more examples
SHARE = 0.75  # of the recorded batches: a shuffled loader gives none such batch out of 10+ classes


def expected_classes(batch: int, classes: int) -> float:
    """Distinct classes in a batch of ``batch`` labels drawn uniformly from ``classes``."""
    return classes * (1 - (1 - 1 / classes) ** batch)


def unshuffled_data(ev: Evidence) -> list[Finding]:
    """UNSHUFFLED_DATA: most recorded batches hold one or two classes of a model that tells many apart."""
    summary = ev.summary or {}
    batches = ((summary.get("targets") or {}).get("batch_classes")) or []
    classes = summary.get("num_classes") or (summary.get("output") or {}).get("features")
    if len(batches) < 3 or not classes or int(classes) < MIN_CLASSES:
        return []
    narrow = [(n, k) for n, k in batches if k <= ONE_SIDED]
    if len(narrow) < SHARE * len(batches):
        return []
    size = int(max(n for n, _ in narrow))
    most = max(k for _, k in narrow)
    held = "one class" if most == 1 else f"at most {most} classes"
    return [Finding(
        "UNSHUFFLED_DATA", "error", None, None,
        f"{len(narrow)} of {len(batches)} recorded training batches hold {held} of the model's {int(classes)} "
        f"(a shuffled batch of {size} would hold about {expected_classes(size, int(classes)):.0f}): the training "
        "data arrives ordered by class, so each stretch of steps trains the model on one class and it forgets the "
        "others. DataLoader does not shuffle unless asked, and datasets such as ImageFolder are stored class by "
        "class.",
        {"batches": len(batches), "narrow": len(narrow), "most_classes": most, "batch_size": size,
         "classes": int(classes)},
        "Shuffle the training data: DataLoader(train_set, batch_size=..., shuffle=True) (or a RandomSampler); "
        "the validation loader can stay in order.")]
