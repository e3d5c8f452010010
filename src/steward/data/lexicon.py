"""The built-in identity-term lexicon used to look for spurious term-label associations.

Deliberately small and common-word: it is a starting point, and ``balance.identity_terms`` replaces it.
"""

IDENTITY_TERMS: dict[str, list[str]] = {
    "gender": ["woman", "women", "man", "men", "female", "male", "girl", "girls", "boy", "boys", "she", "he",
               "her", "him", "his", "hers", "mother", "father", "mom", "dad", "wife", "husband", "daughter", "son",
               "sister", "brother", "lady", "ladies", "gentleman", "girlfriend", "boyfriend", "grandmother",
               "grandfather", "nonbinary", "non-binary"],
    "sexuality": ["gay", "lesbian", "bisexual", "transgender", "trans", "queer", "straight", "homosexual"],
    "religion": ["muslim", "muslims", "islam", "islamic", "christian", "christians", "church", "jewish", "jew",
                 "jews", "hindu", "buddhist", "sikh", "atheist", "catholic", "mosque", "synagogue", "temple"],
    "race_ethnicity": ["black", "white", "asian", "african", "hispanic", "latino", "latina", "arab", "indian",
                       "native", "caucasian"],
    "nationality": ["american", "mexican", "chinese", "russian", "german", "french", "british", "irish",
                    "italian", "polish", "nigerian", "pakistani", "immigrant", "immigrants", "foreigner",
                    "refugee"],
    # "old" is left out: in product text it is nearly always "my old phone", not a person's age.
    "age": ["young", "elderly", "senior", "seniors", "teen", "teenager", "retired", "pensioner",
            "millennial", "boomer"],
    "disability": ["disabled", "disability", "blind", "deaf", "wheelchair", "autistic", "autism"],
}
