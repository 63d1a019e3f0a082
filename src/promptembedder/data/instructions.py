"""The instructions, as data: the wordings the Prompting LLM is trained and evaluated on.

The Prompting LLM exists to write a soft prompt for an instruction it has never read, so one fixed
instruction per task teaches it nothing but a lookup table. Instead:

- ``TRAIN_INSTRUCTIONS`` maps each training task to at least 8 hand-written instructions; one is drawn
  per batch. The first is the canonical one (for the tasks that existed before, the instruction they
  were always trained with). They differ in wording and in length: some terse ("Find a synonym"), some
  long and specific, one or two phrased as a question or as a role, one as "Represent ... for
  retrieving ...". Every one tells the truth about what the query and the positive are, since an
  instruction that misdescribes its task teaches the model to ignore instructions. No two are the same
  after :func:`normalise_instruction`, anywhere in the dict.
- ``EVAL_INSTRUCTIONS`` gives each evaluation task two instructions. ``"trained"`` is in the style of
  the training instructions: it is the task's instruction as evaluated before this change, so the
  trained-style column stays comparable with earlier runs; for ``wordnet_example_gloss`` and
  ``bible_nt_paraphrase`` it is word for word a training instruction, kept on purpose as the case the
  model has read. ``"withheld"`` is a new wording no training task uses: not equal to any training
  instruction after normalisation and sharing no run of 6 words with one, so the gap between the two
  columns measures what the model does with an instruction it has not seen.
"""

from __future__ import annotations

import re
import unicodedata

_WS = re.compile(r"\s+")


def normalise_instruction(s: str) -> str:
    """The key two instructions are compared by: case-folded, whitespace collapsed, trailing punctuation
    (any Unicode punctuation, so "?" and "." alike) stripped."""
    s = _WS.sub(" ", s.casefold()).strip()
    end = len(s)
    while end and (s[end - 1] == " " or unicodedata.category(s[end - 1]).startswith("P")):
        end -= 1
    return s[:end]


# The two instructions an eval task shares with a training task (see the module docstring).
_EXAMPLE_GLOSS = "Given an example sentence, retrieve the dictionary definition of the word sense it illustrates"
_VERSE_PARAPHRASE = "Given a Bible verse, retrieve a verse with the same meaning in other words"

TRAIN_INSTRUCTIONS: dict[str, list[str]] = {
    "wordnet_word_gloss": [
        "Given a word, retrieve the dictionary definition of one of its senses",
        "Find the definition of this word",
        "Look up one sense of this word",
        "What does this word mean?",
        "Retrieve a WordNet gloss for one meaning of the given word",
        "Represent the word for retrieving a short dictionary gloss of one of its meanings",
        "Match the English word or phrase to the definition of one of its senses",
        "You are a lexicographer: given a single English word, find the brief gloss that explains one of "
        "the senses it can have",
        "The query is a word that may have several meanings; retrieve a concise dictionary definition that "
        "describes any one of them, not a sentence that uses the word",
    ],
    "wordnet_example_gloss": [
        _EXAMPLE_GLOSS,
        "Find the sense this sentence illustrates",
        "Map a usage example to its dictionary sense",
        "Given a usage example, find the matching word-sense gloss",
        "Retrieve the gloss that the usage example was written for",
        "Which meaning of a word does this example sentence show? Retrieve its definition",
        "Represent the example sentence for retrieving the definition of the word sense it exemplifies",
        "You are a dictionary editor matching usage examples to senses: given a short sentence that uses a "
        "word in one particular meaning, find the definition of that meaning",
        "The query is an example sentence from a dictionary entry; the answer is the definition of the sense "
        "the sentence demonstrates, not another sense of the same word",
    ],
    "wordnet_word_synonym": [
        "Given a word, retrieve another word with the same meaning in one of its senses",
        "Find a synonym",
        "Find a synonym of this word",
        "What is another word for this?",
        "Match the word with a synonym from the same sense",
        "Retrieve a word that shares one of the senses of the given word",
        "Represent the word for retrieving its synonyms",
        "You are a thesaurus: for the word given, return another word or phrase that WordNet lists in the same synset",
        "The query is a single word or short phrase; find a different word or phrase that can replace it "
        "when it is used in at least one of its meanings",
    ],
    "wordnet_gloss_hypernym": [
        "Given a dictionary definition, retrieve the definition of a more general concept",
        "Find the definition of a broader term",
        "Retrieve the gloss of the hypernym of the concept defined here",
        "What more general category does this definition belong to? Retrieve that category's definition",
        "Represent the definition for retrieving the definition of its hypernym",
        "Generalise: from a specific concept's gloss to the gloss of a wider class containing it",
        "You are building a taxonomy: given the gloss of a concept, find the gloss of a concept above it in "
        "the is-a hierarchy",
        "The query defines a specific concept; the answer is the definition of a broader concept of which it "
        "is a kind, for example the gloss of canine for the gloss of dog",
    ],
    "wordnet_gloss_word": [
        "Given a dictionary definition, retrieve the word it defines",
        "Which word has this meaning?",
        "Name the word for this definition",
        "Reverse dictionary: find the words that match this definition",
        "Represent the definition for retrieving the word or words it defines",
        "Retrieve the WordNet lemmas whose sense is described by the gloss",
        "Given the definition of a concept, retrieve the term or terms a dictionary uses for it",
        "You are a reverse dictionary: the user describes a meaning in a short gloss, and you find the word "
        "or list of synonymous words that express it",
        "The query is a gloss from WordNet and the answer lists the words of that sense; retrieve them, not "
        "words for a related or broader sense",
    ],
    "gcide_word_definition": [
        "Given a word, retrieve its definition from a dictionary",
        "Define this headword",
        "Look up this word in the dictionary",
        "Match the dictionary entry word to a definition",
        "Retrieve one sense's definition for the dictionary headword",
        "Represent the headword for retrieving one of its dictionary definitions",
        "What does this word mean in the Collaborative International Dictionary of English?",
        "You are an old unabridged English dictionary: for the headword given, return one of the definitions "
        "printed under it",
        "The query is a headword from a large English dictionary; find a definition of the headword in any "
        "of its senses, written in the dictionary's own words",
    ],
    "gcide_definition_word": [
        "Given a dictionary definition, retrieve the headword it defines",
        "Find the word being defined",
        "Which headword does this define?",
        "Given what a word means, find the word",
        "Reverse lookup: from a definition to its headword",
        "Represent the dictionary definition for retrieving its headword",
        "Retrieve the dictionary entry word this definition belongs to",
        "You are solving a crossword from a dictionary: given one definition from the Collaborative "
        "International Dictionary of English, give the headword it is listed under",
        "The query is the text of one definition, sometimes with a quotation showing usage; the answer is "
        "the single headword under which a dictionary prints it",
    ],
    "bible_ot_paraphrase": [
        _VERSE_PARAPHRASE,
        "Find the same verse in another translation",
        "Match a verse to its parallel in another version",
        "Paraphrase retrieval: find the verse with the same content",
        "Represent the Bible verse for retrieving other translations of it",
        "Retrieve this Bible verse as rendered by a different English translation",
        "Which verse in the other English translation says the same thing as this one?",
        "You are a Bible translator comparing versions: given an Old Testament verse in either the King James "
        "Version or the World English Bible, find the same verse in the other",
        "The query is one verse of the Old Testament; the answer is that very verse in a second English "
        "translation, not the verse before or after it",
    ],
    "bible_ot_next_verse": [
        "Given a Bible verse, retrieve the verse that follows it",
        "Find the next verse",
        "Predict the verse that continues this one",
        "What verse comes right after this one?",
        "Continue the scripture with its next verse",
        "Represent the Bible verse for retrieving the verse that comes next",
        "You are reading the Old Testament aloud: given the verse just read, find the verse that comes "
        "immediately after it in the text",
        "The query is one verse; the answer is the verse printed directly after it, which usually carries on "
        "the same story, list or speech",
    ],
    "debian_summary_description": [
        "Given a Debian package summary, retrieve its full description",
        "Expand the one-line package summary",
        "Match a package's short summary to its long description",
        "Which package description goes with this short summary?",
        "Retrieve the extended description matching the package synopsis",
        "Represent the Debian package summary for retrieving its long description",
        "You are browsing the Debian archive: given the one-line synopsis of a package, find the "
        "paragraph-length description that the same package gives of itself",
        "The query is the short summary line of a Debian package, as shown by apt search; the answer is the "
        "longer description of the same package, not of a related package with a similar name",
    ],
    "debian_description_summary": [
        "Given a Debian package description, retrieve its one-line summary",
        "Find this package's short summary",
        "Match a long package description to its summary",
        "What is the one-line summary of the package described here?",
        "Retrieve the summary line that the package's description expands on",
        "Represent the package description for retrieving its one-line synopsis",
        "You maintain a Debian package: given its long description, pick the short synopsis line written for "
        "the same package",
        "The query is the long description of a Debian package; the answer is that package's own short "
        "summary, the phrase shown after its name in package lists",
    ],
    "debian_section_label": [
        "Given a Debian package description, retrieve the description of the archive section it belongs to",
        "Label the package with its section",
        "Find the Debian section for this package",
        "Classify the package by its archive section",
        "Retrieve the category description matching the package",
        "Which section of the Debian archive does this package belong to?",
        "Represent the package description for retrieving a description of its section",
        "You are a Debian archive maintainer: read the description of a package and find the explanation of "
        "the archive section, such as libraries, games or utilities, that it is filed under",
        "The query describes one software package; the answer describes the group of packages it is sorted "
        "into, like development tools or documentation",
    ],
    "debian_same_section": [
        "Given a Debian package description, retrieve the description of another package from the same archive section",
        "Find another package from the same section",
        "Cluster package descriptions by archive section",
        "Retrieve a package in the same Debian section",
        "Group packages by section: retrieve a sibling package's description",
        "Which other package would be filed in the same part of the Debian archive?",
        "Represent the package description for grouping it with packages of the same section",
        "You are sorting software into categories: given one package's description, find another package "
        "description that belongs to the same archive section",
        "The query and the answer are descriptions of two different Debian packages that sit in the same "
        "section of the archive, for example two games or two libraries",
    ],
    "devil_word_definition": [
        "Given a word, retrieve its satirical definition from The Devil's Dictionary",
        "Define this word satirically",
        "Find Ambrose Bierce's definition of this word",
        "Retrieve a humorous definition of the headword",
        "How would The Devil's Dictionary define this word?",
        "Represent the word for retrieving its ironic, satirical dictionary definition",
        "You are Ambrose Bierce: given a word, find the witty and cynical definition you wrote for it",
        "The query is a headword from Ambrose Bierce's The Devil's Dictionary; the answer is his mocking "
        "definition of it, which sometimes includes verse or a short fable",
    ],
    "elements_name_description": [
        "Given the name of a chemical element, retrieve its encyclopedia entry",
        "Look up the element",
        "Match an element to its description",
        "Find a description of this chemical element",
        "Retrieve the reference entry for the named element",
        "What does the encyclopedia say about this chemical element?",
        "Represent the element name for retrieving its encyclopedic description",
        "You are a chemistry reference: given an element's name, find the entry that gives its symbol, atomic "
        "number and weight and a short account of its properties",
        "The query names one element of the periodic table; the answer is a short reference-book entry about "
        "that element, not about a neighbouring element",
    ],
    "fortune_category_label": [
        "Given a fortune, retrieve the description of its category",
        "Label the saying with its category",
        "Classify the fortune by its category",
        "Retrieve the category that this fortune falls under",
        "Which category of the fortune collection does this quotation or joke come from?",
        "Represent the fortune for retrieving a description of its category",
        "You are filing fortune-cookie sayings: read a quotation or joke and find the description of the "
        "collection it belongs to, such as computers, food or love",
        "The query is an entry from the Unix fortune program, a quotation, joke or short poem; the answer "
        "describes the themed file the entry was taken from",
    ],
    "fortune_same_category": [
        "Given a fortune, retrieve another fortune from the same category",
        "Find a fortune on the same theme",
        "Retrieve a quotation of the same kind",
        "Which other fortune belongs to the same category as this one?",
        "Match the joke or quotation with another of its category",
        "Group fortunes by theme: retrieve one that shares this category",
        "Represent the fortune for clustering it with fortunes of the same category",
        "You are sorting a pile of fortune-cookie messages into topics: given one, find a different message "
        "that goes in the same pile",
        "The query and the answer are two different entries from the fortune program's collection, a "
        "quotation, joke or verse each, taken from the same themed file",
    ],
    "manpage_name_description": [
        "Given the name line of a Unix manual page, retrieve the first paragraph of its description",
        "Find the manual page's description",
        "Look up the man page description",
        "Retrieve the opening description paragraph for this manual entry",
        "What does the manual say about this command, function or file?",
        "Represent the man page name line for retrieving its DESCRIPTION section",
        "You are reading Unix documentation: given a line such as 'ls - list directory contents', find the "
        "opening paragraph of that manual page's DESCRIPTION section",
        "The query is the NAME line of a manual page, the program or function name followed by a short "
        "summary; the answer is the first paragraph under DESCRIPTION in the same page",
    ],
    "python_docstring_signature": [
        "Given a Python docstring, retrieve the signature of the function it documents",
        "Map the docstring to its signature",
        "Match documentation to a function signature",
        "Find the function signature for this docstring",
        "Retrieve the call signature of the documented function",
        "Which Python function does this documentation describe? Retrieve its signature",
        "Represent the docstring for retrieving the matching function signature",
        "You are a Python programmer reading library documentation: given the docstring of a function, find "
        "its signature with its parameter list",
        "The query is the docstring of a function from an installed Python package; the answer is the "
        "signature of that same function, with its parameters, not of a similar function",
    ],
    "python_name_docstring": [
        "Given the qualified name of a Python function, retrieve the first paragraph of its docstring",
        "Look up the docstring summary",
        "Find the docstring of this function",
        "Match the function name to its docstring",
        "Retrieve the opening paragraph of the documentation for the named function",
        "What does this Python function do, according to its docstring?",
        "Represent the qualified function name for retrieving its documentation",
        "You are a Python developer: given a dotted path such as json.dumps, find the first paragraph of that "
        "function's docstring",
        "The query is a function's full dotted name, module path included; the answer is the first paragraph "
        "of the docstring written for that function in the installed package",
    ],
    "bible_commentary_verse": [
        "Given a Bible commentary note, retrieve the verses it comments on",
        "Find the verses this note explains",
        "Match a commentary to its verses",
        "Link the commentary note to its Bible text",
        "Which Bible passage is this commentary about?",
        "Retrieve the scripture that this commentary explains",
        "Represent the commentary note for retrieving the scripture it discusses",
        "You are a Bible student with a commentary open: given one note from it, find the verse or verses of "
        "the Bible text the note is written about",
        "The query is a note from a Bible commentary, explaining or applying a passage; the answer is the "
        "text of the verses that note comments on",
    ],
    "bible_topic_verse": [
        "Given a topic from a topical Bible index, retrieve a verse listed under it",
        "Find scripture for this topic",
        "Find a verse about this topic",
        "Retrieve a Bible verse on this subject",
        "Topic to scripture: find a verse cited for it",
        "Which Bible verse does the topical index list under this subject?",
        "Represent the topic for retrieving Bible verses indexed under it",
        "You are using a topical concordance of the Bible: given a subject heading, find one of the verses "
        "cited under it",
        "The query is a subject heading such as a name, place or theme from a topical index of the Bible; the "
        "answer is the text of one verse the index lists under that heading",
    ],
}

EVAL_INSTRUCTIONS: dict[str, dict[str, str]] = {
    "bbc_title_article": {
        "trained": "Given a news headline, retrieve the news article it belongs to",
        "withheld": "Find the body text of the BBC story that ran under this headline",
    },
    "bbc_topic_classification": {
        "trained": "Classify the topic of the BBC news article",
        "withheld": "Sort this BBC story into business, entertainment, politics, sport or technology",
    },
    "bbc_topic_clustering": {
        "trained": "Identify the topic of the BBC news article",
        "withheld": "Group BBC reports that cover the same subject area, such as sport or politics",
    },
    "bible_nt_paraphrase": {
        "trained": _VERSE_PARAPHRASE,
        "withheld": "Decide whether two Bible texts are one verse rendered in two English versions",
    },
    "lee_news_sts": {
        "trained": "Retrieve news articles that are semantically similar to the given news article",
        "withheld": "How alike in content would readers judge this Australian news report and another?",
    },
    "sms_spam_classification": {
        "trained": "Classify the SMS message as spam or a legitimate message",
        "withheld": "Tell whether this mobile phone text is junk advertising or an ordinary message",
    },
    "trec_coarse_classification": {
        "trained": "Classify the question by the type of answer it asks for",
        "withheld": "What kind of answer would this question need: a human, a location, a number, an entity, "
        "a description or an abbreviation?",
    },
    "trec_fine_classification": {
        "trained": "Classify the question by the fine-grained type of answer it asks for",
        "withheld": "Sort each question into one of many detailed answer types, such as city, date, definition "
        "or individual person",
    },
    "wordnet_example_gloss": {
        "trained": _EXAMPLE_GLOSS,
        "withheld": "Which dictionary definition captures the sense a word carries in this sentence?",
    },
    "wordnet_gloss_topic_clustering": {
        "trained": "Identify the topic category of the dictionary definition",
        "withheld": "Group word definitions by subject area, such as animals, foods or kinds of motion",
    },
    "wordnet_sense_reranking": {
        "trained": "Given a word and a sentence that uses it, retrieve the definition of the sense in which the "
        "word is used",
        "withheld": "A word, a colon, then a sentence: choose the gloss of the meaning that word has there",
    },
}
