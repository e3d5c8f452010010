"""Generate support conversations (JSONL, ``messages``) with known, planted problems, for the chat demo.

The answers follow one house style (they greet, name the case, say what happens next and sign as Northwind
Support), so a fine-tune visibly learns it; the planted problems are the ones the data stage must catch
before any of it reaches a model: personal data in user **and** assistant turns, a toxic answer, copies of
whole conversations and of prompts, and broken records. :class:`ConversationPlan` says how many of each.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from steward.atomic import atomic_path
from steward.demo.generate import CLOSERS, EXTRAS, FILL, FIRST, INTENTS, LAST, OPENERS, _luhn_complete

SIGN_OFF = "Northwind Support"
SYSTEM = "You are Northwind's customer support assistant. Be brief, kind and concrete."
ANSWERS: dict[str, str] = {
    "billing": "Thanks for flagging this. I have opened a billing review for your {plan} plan; any wrong charge "
               "is refunded within five working days.",
    "refund": "I am sorry about the {product}. Your refund is approved and reaches your original payment method "
              "within five working days.",
    "delivery": "Thanks for your patience. Order {order} is with the courier and should reach you within two "
                "working days; I will send you the new tracking link.",
    "account_access": "Let us get you back in. I have sent a secure reset link to the address on your account; "
                      "it is valid for one hour.",
    "technical_issue": "Sorry for the trouble. Please update the app and restart the {product}; if it still "
                       "fails, reply here and a technician will call you.",
    "cancel_subscription": "Done: your {plan} plan will not renew, and you keep access until the end of the "
                           "current period.",
    "product_info": "Good question. Every {product} comes with a two-year warranty, and our product pages list "
                    "its full specification.",
    "complaint": "I am sorry we let you down. I have passed your case to a team lead, who will contact you "
                 "within one working day.",
}
FOLLOW_UPS = [("Thanks. Will I get an email to confirm?", "Yes, a confirmation email is on its way now."),
              ("OK, and can I reply to that email if something is wrong?", "Yes, just reply to it and it reaches "
                                                                            "our team directly.")]
TOXIC_ANSWER = "Stop whining, you idiot. Nobody here cares about your stupid {product}, so shut up."


# 8 exact copies, 4 repeated prompts and 6 broken records are planted whatever ``n`` is: below ~400
# conversations they pass the data stage's default loss limits (5 % per reason, exact copies 25 %) only if the
# run states the shares it expects.
CHAT_PLANTED_LOSS_LIMITS = {"duplicate_exact": 0.25, "duplicate_prompt_exact": 0.1, "duplicate_prompt_near": 0.1}


@dataclass
class ConversationPlan:
    """What was planted, so the demo (and its tests) can check what the data stage found."""

    records: int = 0  # lines written, broken ones included
    pii_user: dict[str, int] = field(default_factory=dict)  # PII by type in user turns
    pii_assistant: dict[str, int] = field(default_factory=dict)  # ... and in assistant turns
    toxic_answers: int = 0
    exact_duplicates: int = 0
    duplicate_prompts: int = 0  # the same question again, with another answer
    bad: dict[str, int] = field(default_factory=dict)  # quarantine reason -> broken records planted


GREETINGS = ["Hi there,", "Hello,", "Thanks for writing,", "Good morning,", "Hi,", "Thank you for reaching out,"]
DETAILS = ["", "", "I can see your case {ticket} in our system.", "Your reference is {ticket}.",
           "I checked your account history first.", "I have added a note to your file.",
           "This was reported {n} days ago and I am sorry it took a while.", "I have also credited {amount} as a "
           "goodwill gesture.", "I raised it with the {feature} team as well."]
CLOSINGS = ["Anything else, just reply here.", "Have a good day.", "We are here if you need more help.",
            "Thank you for your patience.", "Take care.", "Let me know if that works for you."]


def _answer(intent: str, fill: dict[str, str], rng: random.Random | None = None) -> str:
    if rng is None:
        return f"{ANSWERS[intent].format(**fill)} — {SIGN_OFF}"
    parts = [rng.choice(GREETINGS), ANSWERS[intent], rng.choice(DETAILS), rng.choice(CLOSINGS)]
    return " ".join(p for p in parts if p).format(**fill) + f" — {SIGN_OFF}"


def _conversation(rng: random.Random) -> tuple[list[dict[str, str]], dict[str, str]]:
    intent = rng.choice(list(INTENTS))
    fill = {k: rng.choice(v) for k, v in FILL.items()}
    fill.update(ticket=str(rng.randint(10000, 99999)))
    question = " ".join(p for p in (rng.choice(OPENERS), rng.choice(INTENTS[intent]).format(**fill),
                                    rng.choice(EXTRAS), rng.choice(CLOSERS)) if p)
    messages = [{"role": "system", "content": SYSTEM}] if rng.random() < 0.5 else []
    messages += [{"role": "user", "content": question}, {"role": "assistant", "content": _answer(intent, fill, rng)}]
    if rng.random() < 0.2:  # some conversations go on for a second exchange
        q, a = rng.choice(FOLLOW_UPS)
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    return messages, fill


def _with_pii(records: list[dict], plan: ConversationPlan, rng: random.Random) -> None:
    """Personal data in user turns; in some, the answer repeats it (the worst case: a model learns to say it)."""
    for i in range(12):
        msgs = records[(i * 17 + 3) % len(records)]["messages"]
        user = next(m for m in msgs if m["role"] == "user")
        answer = next(m for m in msgs if m["role"] == "assistant")
        kind = ("CREDIT_CARD", "EMAIL_ADDRESS", "PHONE_NUMBER")[i % 3]
        value = {"CREDIT_CARD": _luhn_complete("4", 16, rng),
                 "EMAIL_ADDRESS": f"{rng.choice(FIRST).lower()}.{rng.choice(LAST).lower()}@example.com",
                 "PHONE_NUMBER": f"+1 212 555 {rng.randint(1000, 9999)}"}[kind]
        user["content"] += f" You can reach me at {value}." if kind != "CREDIT_CARD" else f" My card is {value}."
        plan.pii_user[kind] = plan.pii_user.get(kind, 0) + 1
        if i % 4 == 0:
            answer["content"] = f"{answer['content']} (Noted for {value}.)"
            plan.pii_assistant[kind] = plan.pii_assistant.get(kind, 0) + 1


def _broken(rng: random.Random) -> list[tuple[str, str]]:
    """Records the data stage must quarantine, with the reason it must give."""
    fill = {k: rng.choice(v) for k, v in FILL.items()}
    rows = [
        ("unknown_role", {"messages": [{"role": "customer", "content": "Where is my parcel?"},
                                       {"role": "assistant", "content": _answer("delivery", fill)}]}),
        ("no_assistant_turn", {"messages": [{"role": "user", "content": "Is the shop open on Sunday?"}]}),
        ("empty_turn", {"messages": [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": "  "}]}),
        ("turn_order", {"messages": [{"role": "assistant", "content": "Hi, how can I help?"},
                                     {"role": "user", "content": "My order is late."}]}),
    ]
    return [(reason, json.dumps(r)) for reason, r in rows] + [("malformed_line", '{"messages": [{"role": "user", ')]


def generate_support_conversations(path: str | Path, n: int = 300, seed: int = 11) -> ConversationPlan:
    """Write ``n`` support conversations as JSONL, plus planted problems; return what was planted."""
    rng = random.Random(seed)
    plan = ConversationPlan()
    records, seen = [], set()
    while len(records) < n:
        messages, _ = _conversation(rng)
        key = json.dumps(messages)
        if key not in seen:  # the generator's own coincidences are not planted duplicates
            seen.add(key)
            records.append({"messages": messages})
    _with_pii(records, plan, rng)
    extra = [json.dumps(records[(i * 23 + 7) % n]) for i in range(8)]  # exact copies
    plan.exact_duplicates = len(extra)
    for i in range(4):  # the same prompt, answered differently
        msgs = records[(i * 41 + 5) % n]["messages"]
        user = next(m for m in msgs if m["role"] == "user")
        extra.append(json.dumps({"messages": [user, {"role": "assistant", "content": "Please call our hotline."}]}))
        plan.duplicate_prompts += 1
    fill = {k: rng.choice(v) for k, v in FILL.items()}
    extra.append(json.dumps({"messages": [{"role": "user", "content": "My {product} arrived broken.".format(**fill)},
                                          {"role": "assistant", "content": TOXIC_ANSWER.format(**fill)}]}))
    plan.toxic_answers = 1
    for reason, line in _broken(rng):
        extra.append(line)
        plan.bad[reason] = plan.bad.get(reason, 0) + 1
    lines = [json.dumps(r) for r in records]
    for line in extra:
        lines.insert(rng.randint(len(lines) // 4, len(lines)), line)
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n", encoding="utf-8")
    plan.records = len(lines)
    return plan
