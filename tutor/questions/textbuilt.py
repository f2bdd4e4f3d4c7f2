"""Questions built from the text by the tool alone, with no language model: right by construction, so a course
without a capable model still gets practice.

The gap fill ("Lückentext"): a sentence of the section that stands on its own, its key term, name, command, number
or defined term blanked (tutor.questions.spans), the key among three wrong answers of the same kind from the
course's own vocabulary that the text does not support (tutor.questions.item_checks.supported_by), nor the course
says or describes alike (spans.said_alike, spans.described_alike). Precision before coverage: a key whose name may
say what it is for (a noun, a command with its manual page, a variable) is asked only where the course says more of
it with the sentence's words, or names it beside another command (spans.taught, spans.partnered); the hand reviews
(docs/questions-rubric.md) found the other such items given away by their meaning or open to a second answer. A
wrong man page the course describes much further from the sentence than the key (spans.Plausibility: xev(1) among
printing commands) is not taken, and an item left with too few plausible ones is dropped with its reason; so is one
whose sentence asks for its code key no more than for the wrong answers (spans.singled_out: "~/.bashrc" for $PATH).
An English course gets code keys and numbers only (builds_well).
"""

import random
import zlib

from tutor.questions import item_checks, items, spans
from tutor.questions.models import Question

WRONG = 3  # wrong answers per gap
ASKED = 12  # distractor candidates asked for, to keep three the text does not support and of three families


def section_text(passages):
    """The text of a section's passages, each line once (passages repeat the end of the one before)."""
    return "\n".join(dict.fromkeys(line.strip() for chunk in passages for line in chunk.text.splitlines()
                                   if line.strip()))


def _source(sentence, passages):
    """The passage the sentence stands in (the first), or None."""
    folded = " ".join(sentence.split())
    for chunk in passages:
        if folded in " ".join(chunk.text.split()):
            return chunk
    return None


def builds_well(candidate, language="de"):
    """Whether a key makes a gap fill a lecturer would approve: man pages, paths, options, variables and file names
    (a closed class with a shape), numbers, and nouns (whose wrong answers must share their compound's head);
    acronyms, bare command names and code of no known shape made giveaways or implausible choices in the hand
    reviews (docs/questions-rubric.md). Nouns only in German, where the capital letter says what a noun is and the
    tagger gives its number and gender: in an English course the words the tool took for terms were any words
    ("between | reports | through | current" for "The popcon data contains ___ from …")."""
    if candidate.kind == spans.NAME:
        return False
    if candidate.token_kind == spans.TERM and language != "de":
        return False
    if candidate.kind != spans.COMMAND:
        return True
    shape = spans.code_shape(candidate.span)
    # a bare command name ("less", "init") draws bare words of all sorts (head, sort, uniq): written with its man
    # page ("less(1)") it draws other commands
    return shape not in ("other", "name")


def gap_fill(course, passages, count, *, language, avoid=(), vocabulary=None, embed=None, sentences=None):
    """[(unsaved Question, problems)] for up to `count` gap-fill questions about these passages of one section, the
    best answer spans first; a sentence already asked about (its gapped form in `avoid`) is left out, and so is a
    span with fewer than three wrong answers of its kind that fit the gap and that the text does not support."""
    vocab = vocabulary or spans.course_vocabulary(course)
    text = section_text(passages)
    sentences = sentences if sentences is not None else item_checks.section_sentences(passages)
    asked = {items.folded(s) for s in avoid}
    words = {w for sentence in sentences for _start, _end, w in spans.tokens(sentence)}
    out = []
    embedder = []

    def course_embed(texts):  # the course's embedding model, looked up only when a description is embedded
        if not embedder:
            embedder.append(embed or spans._course_embed(course))
        return embedder[0](texts)

    for candidate in spans.answer_candidates(text, course, language, vocabulary=vocab):
        if len([q for q, problems in out if not problems]) >= count:
            break
        if items.folded(candidate.gapped) in asked or not builds_well(candidate, vocab.language):
            continue
        if spans.named_for_use(candidate) and not spans.taught(candidate, vocab) and not spans.partnered(
                candidate, vocab):
            continue  # the course says this of the key nowhere else, nor names it beside another command: the
            # sentence may fit any word of the kind, or give the key away by its meaning (see spans.taught)
        question = Question(kind=Question.GAP_FILL, origin=Question.GENERATED, stem=candidate.gapped,
                            explanation=candidate.sentence, source_chunk=_source(candidate.sentence, passages))
        wrong, implausible = [], []
        plausibility = spans.Plausibility(candidate, vocab, course_embed)
        partners = spans.course_partners(candidate, vocab)
        for word in spans.distractor_candidates(candidate, course, ASKED, vocabulary=vocab, embed=embed,
                                                section_words=words):
            if any(spans.siblings(word, other, candidate.span) for other in wrong):
                continue  # a second wrong answer of one family the key is not of: the key would be the odd one out
            if candidate.kind == spans.COMMAND and spans.named_after(word, candidate.span):
                continue  # "ssh-add(1)" beside the key ssh(1): its name points to the key
            if candidate.kind == spans.COMMAND and spans.lures(word, candidate):
                continue  # its name holds a word of the sentence ("Optionen", lpoptions(1)): a second right answer
            if partners and spans.outside_group(word, partners, candidate.sentence, vocab):
                continue  # the course groups the key with a command of the sentence, and never names this with it
            if candidate.token_kind == spans.TERM and (spans.echoes(word, candidate.sentence) or not spans.fits_adjective(
                    word, candidate, vocab)):
                continue  # "startet einen Startprozess", "die linke F1-Taste": nobody picks it
            question.options = [word]
            if not item_checks.supported_by(word, question, sentences) and not spans.said_alike(
                    word, candidate.span, candidate.sentence, vocab) and not spans.described_alike(
                    word, candidate.span, candidate.sentence, vocab):
                if plausibility.plausible(word):
                    wrong.append(word)
                else:  # the course says it is something else: nobody picks it, or the key stands out
                    implausible.append(word)
            if len(wrong) == WRONG:
                break
        if len(wrong) < WRONG:
            if implausible and len(wrong) + len(implausible) >= WRONG and not spans.gives_away(
                    candidate, [*wrong, *implausible][:WRONG]):
                # an item the rule above dropped: the lecturer sees why (the wrong answers it would have had)
                question.options = [*wrong, *implausible][:WRONG] + [candidate.span]
                question.correct_index = WRONG
                out.append((question, [(items.IMPLAUSIBLE, ", ".join(
                    f"{w} ({plausibility.below(w):+.3f})" for w in implausible))]))
            continue  # too few wrong answers of the key's kind and grammar: no item rather than a giveaway
        if spans.gives_away(candidate, wrong):
            continue  # the sentence holds a part of the key the wrong answers lack: it points to the key
        defined = spans.defined_away(candidate, wrong, vocab)
        if defined:  # the sentence says what the course's table row says the key is, and of no wrong answer
            question.options, question.correct_index = [*wrong, candidate.span], WRONG
            out.append((question, [(items.DEFINED, ", ".join(sorted(defined)))]))
            continue
        if candidate.kind == spans.COMMAND and not spans.singled_out(candidate, wrong, vocab):
            # nothing the sentence says asks for the key rather than a wrong answer ("~/.bashrc" for $PATH)
            question.options, question.correct_index = [*wrong, candidate.span], WRONG
            out.append((question, [(items.OPEN, ", ".join(wrong))]))
            continue
        options = wrong + [candidate.span]
        random.Random(zlib.crc32(candidate.sentence.encode())).shuffle(options)
        question.options, question.correct_index = options, options.index(candidate.span)
        out.append((question, items.form_problems(question)))
    return out
