"""Credit for the posts the case studies come from: what each one is, its title, whose explanation the
page gives, and the page's list of sources.

The copies of the posts the course drew on carry no links or author names, so a post is credited by
what its own text shows it is (a Russian-language Q&A post, a Chinese blog post on Juejin, ...), with
its title where it has one; nothing is guessed.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """A post, credited by what its text shows it is."""
    site: str  # what it is, as its text shows: "a Russian-language Q&A post"
    title: str  # in English: the post's own title translated, or the question in our words where it has none
    kind: str  # what of it is there: "a question and an answer", "a question", "" (a blog post: said by site)
    language: str  # the language it was written in
    quotes: tuple = ()  # (original, English) pairs, short
    original_title: str = ""  # the post's own title (or heading) as written; empty where the copy carries none
    credit: str = ""  # whose the page's explanation is: the post's, or this course's


def source_line(s: Source) -> str:
    """What the post is and what it is called, as one sentence ending in a full stop."""
    named = (f"headed *{s.original_title}* ({s.title})" if s.original_title else
             f"the copy we have carries no title; in our words: *{s.title}*")
    line = f"{s.site[0].upper()}{s.site[1:]}{f' ({s.kind})' if s.kind else ''}, {named}"
    return line if line.rstrip("*").endswith(("?", "!", ".")) else line + "."  # "*Why …?*" takes no full stop


# the blog post behind case 003, whose runs are the comparison pages' own
CASE_003 = Source("a Chinese-language blog post on Juejin (掘金)", "Analysing what activation functions do", "",
                  "Chinese", original_title="分析激活函数的作用",
                  credit="Its sigmoid network that stays at chance is told on the *Compare activations* and *Two "
                         "runs* pages, with the comparison's runs.")


def sources_markdown() -> str:
    """The page's list of sources: every case's post, case 003's included, and the tutorial the set follows."""
    from .case_studies import CASES
    from .narrate_pages import CREDIT
    entries = {c.id: (c.title, c.source) for c in CASES} | {"003": ("the sigmoid network that does not learn", CASE_003)}
    items = [f"- **Case {cid}** ({title}): {source_line(s)} Written in {s.language}. {s.credit}".rstrip()
             for cid, (title, s) in sorted(entries.items())]
    return ("Each case starts from a post someone wrote. The copies the course drew on carry no links or author "
            "names, so each is credited by what it is and by its title (or, where the copy has none, its question "
            "in our words), and nothing is guessed.\n\n" + "\n".join(items) + f"\n\n{CREDIT}")
