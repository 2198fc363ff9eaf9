#!/usr/bin/python3
"""md2man.py - man pages generated from the project's Markdown documentation.

    md2man.py NAME SECTION "one-line description" SOURCE.md[#Heading] ... > NAME.SECTION

Each SOURCE is a Markdown file, or one section of it (from the heading named after '#' to the next
heading of the same level or higher). The subset of Markdown the docs use is translated: headings
(.SH/.SS), paragraphs, indented code blocks, bullet lists, tables (one .TP entry per row) and
inline code (bold); links keep their text. Nothing else is needed to read the docs in man(1).
"""
import re
import sys
import time


def esc(text):
    """esc - roff escapes and inline markup of one line of prose."""
    text = text.replace("\\", "\\e")
    text = re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", text)
    text = re.sub(r"`([^`]+)`", r"\\fB\1\\fR", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", text)
    text = text.replace("-", "\\-")
    if text.startswith((".", "'")):
        text = "\\&" + text
    return text


def section(path):
    """section - the lines of a file, or of one of its sections ("file.md#Heading")."""
    fname, _, want = path.partition("#")
    with open(fname, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if not want:
        return lines
    out, level = [], None
    for ln in lines:
        m = re.match(r"(#+) (.*)", ln)
        if m and level is None and m.group(2).strip() == want:
            level = len(m.group(1))
            continue
        if m and level is not None and len(m.group(1)) <= level:
            break
        if level is not None:
            out.append(ln)
    if level is None:
        sys.exit("md2man: no section '%s' in %s" % (want, fname))
    return out


def table_row(ln):
    """table_row - the cells of a Markdown table row."""
    cells = [c.strip() for c in ln.strip().strip("|").split("|")]
    return cells


def convert(lines, out):
    """convert - Markdown lines as roff lines appended to out."""
    i, in_table = 0, False
    while i < len(lines):
        ln = lines[i]
        m = re.match(r"(#+) (.*)", ln)
        if m:
            out.append((".SH " if len(m.group(1)) <= 2 else ".SS ") + esc(m.group(2).upper() if len(m.group(1)) <= 2
                                                                             else m.group(2)))
        elif ln.startswith("    "):
            block = []
            while i < len(lines) and (lines[i].startswith("    ") or lines[i] == ""):
                block.append(lines[i][4:])
                i += 1
            while block and block[-1] == "":
                block.pop()
            out.extend([".PP", ".RS 4", ".nf"] + [esc(b) for b in block] + [".fi", ".RE"])
            continue
        elif ln.startswith("|"):
            cells = table_row(ln)
            if all(re.fullmatch(r":?-+:?", c) for c in cells):
                pass
            elif not in_table:
                in_table = True  # the header row names the columns: left out
            else:
                out.append(".TP")
                out.append(esc(cells[0]))
                out.append(esc(" \u2014 ".join(c for c in cells[1:] if c)))
        elif re.match(r"\s*- ", ln):
            out.extend([".IP \\(bu 2", esc(re.sub(r"^\s*- ", "", ln))])
        elif ln.strip() == "":
            in_table = False
            out.append(".PP")
        else:
            out.append(esc(ln.strip()))
        i += 1


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    name, sect, desc = sys.argv[1:4]
    out = ['.TH %s %s "%s" "Sluice" "Sluice"' % (name.upper(), sect, time.strftime("%Y-%m-%d")),
           ".SH NAME", "%s \\- %s" % (name, esc(desc))]
    for src in sys.argv[4:]:
        convert(section(src), out)
    text = "\n".join(out) + "\n"
    text = re.sub(r"(\.PP\n)+", ".PP\n", text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
