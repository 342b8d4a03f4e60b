#!/usr/bin/env python3
"""Generate the edits the filter benchmark evaluates: AbuseFilter variables as JSON.

Usage: gen.py OUT_DIR

Writes edit-5k.json, edit-50k.json and edit-100k.json into OUT_DIR. Each file is one JSON
object holding the variables AbuseFilter computes for an edit (action, user_*, page_*,
summary, old/new wikitext, added/removed lines, the unified diff, sizes, links, timestamp).

The new text is the old text with about 15 % of its non-empty lines rewritten, extended or
removed (and a few paragraphs inserted), as an encyclopedia article grows. A new,
non-autoconfirmed account makes the edit, so the usual "new user" guards in filters pass
and their expensive conditions run. A few kinds of abuse are planted in the added text
(chat-speak and insults, a long run of one character, one spam link) so that a handful of
the benchmark filters match.

Only the standard library is used and the output depends only on the fixed seeds below,
so every run of the benchmark evaluates exactly the same bytes.
"""

import difflib
import json
import os
import random
import re
import sys

SEED = 20241125

# target size of new_wikitext in bytes, per output file
SIZES = {"5k": 5_000, "50k": 50_000, "100k": 100_000}

TITLE = "Valea Dunării Inferioare"
SUMMARY = "/* History */ expanded the section, added sources and a gallery"

PLACES = [
    "Brăila", "Galați", "Tulcea", "Vidin", "Ruse", "Silistra", "Călărași", "Giurgiu",
    "Turnu Măgurele", "Svishtov", "Nikopol", "Lom", "Oltenița", "Cernavodă", "Hârșova",
    "Isaccea", "Sulina", "Reni", "Izmail", "Vylkove", "Dobruja", "Wallachia", "Moldavia",
    "Bessarabia", "Bulgaria", "Romania", "Danube Delta", "Black Sea", "Carpathians",
]
PEOPLE = [
    "Mircea the Elder", "Vlad III", "Michael the Brave", "Alexandru Ioan Cuza",
    "Carol I of Romania", "Stefan Stambolov", "Nicolae Iorga", "Dimitrie Cantemir",
    "Constantin Brâncoveanu", "Ion Heliade Rădulescu", "Mihail Kogălniceanu",
]
TOPICS = [
    "river trade", "grain exports", "fisheries", "shipbuilding", "the Ottoman period",
    "the Treaty of Adrianople", "the Crimean War", "the European Commission of the Danube",
    "the railway network", "flood control", "wetland conservation", "river ports",
    "the Roman limes", "Byzantine fortifications", "the Genoese trading posts",
    "the 1877 war of independence", "collectivisation", "the Iron Gates dams",
]
NOUNS = [
    "harbour", "fortress", "settlement", "market", "customs house", "monastery", "bridge",
    "levee", "canal", "lighthouse", "shipyard", "granary", "garrison", "ferry", "dockyard",
    "archive", "museum", "cathedral", "district", "estuary", "floodplain", "island",
]
ADJS = [
    "important", "fortified", "prosperous", "seasonal", "regional", "strategic", "navigable",
    "marshy", "densely populated", "rural", "industrial", "medieval", "modern", "former",
]
VERBS = [
    "was founded", "was rebuilt", "was expanded", "was abandoned", "was annexed",
    "was restored", "was flooded", "was fortified", "was connected by rail",
    "was declared a free port", "was surveyed", "was excavated",
]
PUBLISHERS = [
    ("Editura Academiei Române", "https://www.ear.ro/"),
    ("Cambridge University Press", "https://www.cambridge.org/"),
    ("Oxford University Press", "https://global.oup.com/"),
    ("Institutul Național de Statistică", "https://insse.ro/cms/"),
    ("Danube Delta Biosphere Reserve Authority", "https://ddbra.ro/en/"),
    ("BBC News", "https://www.bbc.co.uk/news/"),
    ("The Guardian", "https://www.theguardian.com/world/"),
    ("Reuters", "https://www.reuters.com/world/europe/"),
    ("Encyclopaedia Britannica", "https://www.britannica.com/place/"),
]
SECTIONS = [
    "Etymology", "Geography", "History", "Ancient period", "Middle Ages", "Ottoman rule",
    "Modern era", "Economy", "Transport", "Demographics", "Culture", "Ecology",
    "Climate", "Administration", "Notable people", "Twin towns",
]
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December",
]

# Planted abuse. Each string is added somewhere in the new text of every size.
VANDAL_SENTENCE = "lol this town is sooo boring and stupid, nobody cares about it"
REPEAT_WORD = "Wooooooooooooooow!!!!"
SPAM_LINE = (
    "* [http://www.cheap-replica-watches-online.biz/best-deals Best replica watches "
    "at discount prices] - buy now, free shipping"
)


def slug(s):
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


class Writer:
    """Builds wikitext from a seeded RNG."""

    def __init__(self, rng):
        self.rng = rng
        self.refs = 0

    def pick(self, xs):
        return self.rng.choice(xs)

    def date(self):
        return "%d %s %d" % (self.rng.randint(1, 28), self.pick(MONTHS), self.rng.randint(2005, 2024))

    def link(self):
        r = self.rng.random()
        if r < 0.5:
            return "[[%s]]" % self.pick(PLACES)
        if r < 0.75:
            p = self.pick(PEOPLE)
            return "[[%s|%s]]" % (p, p.split()[-1])
        return "[[%s]]" % self.pick(TOPICS).replace("the ", "", 1).capitalize()

    def ref(self):
        self.refs += 1
        if self.refs > 3 and self.rng.random() < 0.25:
            return '<ref name="r%d" />' % self.rng.randint(1, self.refs - 1)
        pub, base = self.pick(PUBLISHERS)
        topic = self.pick(TOPICS)
        url = "%s%s-%d" % (base, slug(topic), self.rng.randint(1000, 99999))
        kind = self.rng.random()
        if kind < 0.6:
            body = "{{cite web |url=%s |title=%s in %s |publisher=%s |access-date=%s}}" % (
                url, topic.capitalize(), self.pick(PLACES), pub, self.date())
        elif kind < 0.85:
            body = "{{cite book |last=%s |first=%s |title=A history of %s |publisher=%s |year=%d |page=%d}}" % (
                self.pick(["Popescu", "Ionescu", "Petrov", "Georgiev", "Smith", "Müller"]),
                self.pick(["Andrei", "Elena", "Ivan", "Maria", "John", "Anna"]),
                topic, pub, self.rng.randint(1950, 2022), self.rng.randint(3, 480))
        else:
            body = "[%s %s] (%s)" % (url, topic.capitalize(), pub)
        return '<ref name="r%d">%s</ref>' % (self.refs, body)

    def sentence(self):
        rng = self.rng
        forms = [
            lambda: "The %s %s of %s %s in %d." % (
                self.pick(ADJS), self.pick(NOUNS), self.link(), self.pick(VERBS), rng.randint(1200, 2020)),
            lambda: "During %s, the %s near %s %s." % (
                self.pick(TOPICS), self.pick(NOUNS), self.link(), self.pick(VERBS)),
            lambda: "%s described the %s as %s and %s." % (
                self.link(), self.pick(NOUNS), self.pick(ADJS), self.pick(ADJS)),
            lambda: "By %d the population had reached %s, most of them employed in %s." % (
                rng.randint(1830, 2011), "{:,}".format(rng.randint(800, 250000)), self.pick(TOPICS)),
            lambda: "It lies %d km from %s on the %s bank of the river." % (
                rng.randint(3, 180), self.link(), self.pick(["left", "right"])),
            lambda: "The area is known for %s{{citation needed|date=%s %d}}." % (
                self.pick(TOPICS), self.pick(MONTHS), rng.randint(2010, 2024)),
        ]
        s = self.pick(forms)()
        if rng.random() < 0.35:
            s += self.ref()
        return s

    def paragraph(self):
        return " ".join(self.sentence() for _ in range(self.rng.randint(3, 7)))

    def bullets(self):
        return ["* %s" % self.sentence() for _ in range(self.rng.randint(3, 6))]

    def table(self):
        rows = ['{| class="wikitable sortable"', "|+ Population by census year",
                "! Year !! Population !! Change"]
        pop = self.rng.randint(5000, 90000)
        for year in range(1860, 2030, self.rng.choice([10, 20, 30])):
            new = int(pop * self.rng.uniform(0.9, 1.2))
            rows += ["|-", "| %d || %s || %+.1f%%" % (year, "{:,}".format(new), 100.0 * (new - pop) / pop)]
            pop = new
        rows.append("|}")
        return rows

    def image(self):
        return "[[File:%s %s.jpg|thumb|%s %s]]" % (
            self.pick(PLACES), self.pick(NOUNS), self.pick(NOUNS).capitalize(), "in " + self.pick(PLACES))

    def section(self, level=2):
        """A section as a list of blocks (each a list of lines), so it can be cut between blocks."""
        head = ["%s %s %s" % ("=" * level, self.pick(SECTIONS), "=" * level)]
        if self.rng.random() < 0.3:
            head.append(self.image())
        blocks = [head]
        for _ in range(self.rng.randint(2, 4)):
            r = self.rng.random()
            if r < 0.7:
                blocks.append([self.paragraph(), ""])
            elif r < 0.85:
                blocks.append(self.bullets() + [""])
            else:
                blocks.append(self.table() + [""])
        return blocks


def article(rng, target):
    w = Writer(rng)
    head = [
        "{{Short description|Region along the lower course of the Danube}}",
        "{{Use dmy dates|date=March 2024}}",
        "{{Infobox region",
        "| name = %s" % TITLE,
        "| native_name = Valea Dunării de Jos",
        "| image = Danube at %s.jpg" % w.pick(PLACES),
        "| country = [[Romania]], [[Bulgaria]], [[Ukraine]]",
        "| area_km2 = %d" % rng.randint(20000, 60000),
        "| population = %d" % rng.randint(900000, 3000000),
        "| website = https://www.lowerdanube.example.org/",
        "}}",
        "'''%s''' is the %s region along the lower course of the [[Danube]]. %s" % (
            TITLE, w.pick(ADJS), w.paragraph()),
        "",
    ]
    tail = [
        "== See also ==",
        "* [[Danube]]", "* [[Danube Delta]]", "* [[Iron Gates]]",
        "",
        "== References ==",
        "{{Reflist}}",
        "",
        "== External links ==",
        "* [https://www.icpdr.org/ International Commission for the Protection of the Danube River]",
        "* {{Commons category|Lower Danube}}",
        "",
        "{{Danube}}",
        "[[Category:Regions of Romania]]",
        "[[Category:Regions of Bulgaria]]",
        "[[Category:Danube]]",
    ]
    blocks = []

    def size():
        return len("\n".join(head + [l for b in blocks for l in b] + tail).encode())

    while size() < target:
        blocks += w.section(2)
        if rng.random() < 0.4:
            blocks += w.section(3)
    # drop whole blocks from the end to land just under the target, never ending on a heading
    while size() > target and len(blocks) > 2:
        blocks.pop()
    while blocks and blocks[-1][0].startswith("="):
        blocks.pop()
    body = [l for b in blocks for l in b]
    return head + body + tail, w, (len(head), len(head) + len(body))


def edit(rng, writer, old_lines, body):
    """Change about 15 % of the lines: rewrite, extend, delete, insert; plant the abuse."""
    new = []
    content = [i for i in range(*body)
               if old_lines[i] and not old_lines[i].startswith(("{|", "|}", "|-", "|+", "!"))]
    k = max(4, sum(1 for l in old_lines if l) * 15 // 100)
    touched = set(rng.sample(content, min(k, len(content))))
    # the chat-speak and the long run of one letter go at the end of two prose paragraphs,
    # the spam link into "External links", as such edits usually look
    prose = [i for i in content if len(old_lines[i]) > 200 and not old_lines[i].startswith(("*", "|", "["))]
    plant = {prose[0]: "vandal", prose[len(prose) // 2]: "repeat"}
    touched.update(plant)
    external = old_lines.index("== External links ==") + 1
    for i, line in enumerate(old_lines):
        if i == external:
            new.append(line)
            new.append(SPAM_LINE)
            continue
        if i not in touched:
            new.append(line)
            continue
        what = plant.get(i)
        if what == "vandal":
            new.append(line + " " + VANDAL_SENTENCE)
            continue
        if what == "repeat":
            new.append(line + " " + REPEAT_WORD + " " + writer.sentence())
            continue
        r = rng.random()
        if line.startswith("| "):
            # a table row: correct one of the numbers
            new.append(re.sub(r"\d+(?=,\d{3} )", lambda m: str(max(1, int(m.group()) + rng.randint(-9, 9))),
                              line, count=1))
        elif line.startswith("="):
            new.append(line)  # keep the heading, add a paragraph under it
            new.append(writer.paragraph())
        elif r < 0.15:
            pass  # removed
        elif r < 0.55:
            new.append(line + " " + writer.sentence() + " " + writer.sentence())
        elif r < 0.8:
            # rewrite one sentence in the middle
            bullet = "* " if line.startswith("* ") else ""
            parts = line[len(bullet):].split(". ")
            j = rng.randrange(len(parts))
            parts[j] = writer.sentence().rstrip(".")
            new.append(bullet + ". ".join(parts))
        else:
            new.append(line)
            new.append("")
            new.append(writer.paragraph())
    return new


def unified_diff(a, b):
    """The diff the way MediaWiki's UnifiedDiffFormatter writes it (2 lines of context)."""
    out = []
    sm = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for group in sm.get_grouped_opcodes(2):
        i1, i2, j1, j2 = group[0][1], group[-1][2], group[0][3], group[-1][4]
        out.append("@@ -%d,%d +%d,%d @@" % (i1 + 1, i2 - i1, j1 + 1, j2 - j1))
        for tag, a1, a2, b1, b2 in group:
            if tag == "equal":
                out += [" " + l for l in a[a1:a2]]
                continue
            if tag in ("replace", "delete"):
                out += ["-" + l for l in a[a1:a2]]
            if tag in ("replace", "insert"):
                out += ["+" + l for l in b[b1:b2]]
    return "".join(l + "\n" for l in out)


URL = re.compile(r"(?:https?:)?//[^\s\]\[<>\"{}|]+")


def links(text):
    seen = []
    for u in URL.findall(text):
        if u not in seen:
            seen.append(u)
    return seen


def variables(size_name, target):
    # The edit grows the text by a random amount; shrink the old text until the new one
    # lands near the target size (deterministic: same seeds, same steps).
    old_target = target * 0.88
    for _ in range(4):
        rng = random.Random("%d-%s" % (SEED, size_name))
        old_lines, writer, body = article(rng, int(old_target))
        new_lines = edit(rng, writer, old_lines, body)
        got = len("\n".join(new_lines).encode())
        if abs(got - target) < target * 0.03:
            break
        old_target *= target / got
    old, new = "\n".join(old_lines), "\n".join(new_lines)
    diff = unified_diff(old_lines, new_lines)
    diff_lines = diff.split("\n")
    old_links, new_links = links(old), links(new)
    return {
        "action": "edit",
        "user_name": "Riverbank Reader 82",
        "user_editcount": 7,
        "user_groups": ["*", "user"],
        "user_age": 2 * 86400 + 3600,
        "user_emailconfirm": None,
        "page_id": 48213,
        "page_namespace": 0,
        "page_title": TITLE,
        "page_prefixedtitle": TITLE,
        "summary": SUMMARY,
        "minor_edit": False,
        "old_wikitext": old,
        "new_wikitext": new,
        "added_lines": [l[1:] for l in diff_lines if l.startswith("+")],
        "removed_lines": [l[1:] for l in diff_lines if l.startswith("-")],
        "edit_diff": diff,
        "edit_delta": len(new.encode()) - len(old.encode()),
        "old_size": len(old.encode()),
        "new_size": len(new.encode()),
        "added_links": [u for u in new_links if u not in old_links],
        "removed_links": [u for u in old_links if u not in new_links],
        "all_links": new_links,
        "timestamp": "1732526400",
    }


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen.py OUT_DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, target in SIZES.items():
        v = variables(name, target)
        with open(os.path.join(out, "edit-%s.json" % name), "w", encoding="utf-8") as f:
            json.dump(v, f, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    main()
