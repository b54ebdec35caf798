"""Reading people out of a question: names (Chinese by jieba, Latin case-folded), 我/me, only, without."""

from __future__ import annotations

from datetime import date

import pytest

from smartalbum.search.query import ParsedQuery, PeopleDirectory, parse_query

TODAY = date(2026, 12, 2)
MUM, ALICE, BOB, MING, ME = 2, 3, 4, 5, 1
PEOPLE = PeopleDirectory(
    {"妈妈": MUM, "老妈": MUM, "mum": MUM, "alice": ALICE, "bob": BOB, "小明": MING, "aunt may": 6},
    me=ME,
    shown={MUM: "妈妈", ALICE: "Alice", BOB: "Bob", MING: "小明", 6: "Aunt May"},
)


def parse(text: str, people: PeopleDirectory = PEOPLE) -> ParsedQuery:
    return parse_query(text, today=TODAY, people=people)


@pytest.mark.parametrize(
    ("text", "people", "only", "semantic"),
    [
        ("我和妈妈在雪地里合影", (ME, MUM), False, "雪地里"),
        ("妈妈的照片", (MUM,), False, ""),
        ("老妈在海边", (MUM,), False, "海边"),
        ("photos of Alice and me at the beach", (ALICE, ME), False, "beach"),
        ("只有小明一个人", (MING,), True, ""),
        ("小明自己在公园", (MING,), True, "公园"),
        ("only Mum", (MUM,), True, ""),
        ("ALICE alone on the beach", (ALICE,), True, "beach"),
        ("me and my Mum in the snow", (ME, MUM), False, "snow"),
        ("Aunt May's birthday cake", (6,), False, "birthday cake"),
    ],
)
def test_people_are_read_and_taken_out_of_the_search_text(
    text: str, people: tuple[int, ...], only: bool, semantic: str
) -> None:
    q = parse(text)
    assert q.people == people
    assert q.people_only is only
    assert q.semantic == semantic
    assert q.has_filters


def test_possessive_self_word_is_not_the_owner() -> None:
    # 我妈妈 / my Mum: Mum is meant, not "me and Mum"
    assert parse("我妈妈在海边").people == (MUM,)
    assert parse("我妈妈在海边").semantic == "海边"
    assert parse("my Mum at the beach").people == (MUM,)


@pytest.mark.parametrize("text", ["我拍的日落", "我们在海边", "my photos from the beach", "我的相机"])
def test_self_words_that_do_not_mean_the_owner(text: str) -> None:
    assert parse(text).people == ()


def test_without_a_person_excludes_their_photos_not_a_word() -> None:
    q = parse("Alice without Bob")
    assert (q.people, q.people_excluded, q.exclude) == ((ALICE,), (BOB,), ())
    q = parse("海边 不要小明")
    assert (q.people_excluded, q.exclude, q.semantic) == ((MING,), (), "海边")
    assert "不含人物：小明" in q.understood
    # other exclusions stay text exclusions
    assert parse("妈妈 没有狗").exclude == ("狗",)


def test_only_excluding_a_person_is_only_exclusions() -> None:
    assert parse("不要小明").only_exclusions
    assert not parse("小明 不要狗").only_exclusions


def test_names_are_whole_words() -> None:
    # 明 of 小明 inside 明天, "bob" inside "bobsleigh", "alice" inside "Alicante": not the people
    assert parse("明天的日出").people == ()
    assert parse("bobsleigh race").people == ()
    assert parse("Alicante harbour").people == ()


def test_unknown_names_stay_search_words_and_no_owner_means_no_me() -> None:
    q = parse("Carol at the beach")
    assert q.people == () and "Carol" in q.semantic
    nobody = PeopleDirectory({"妈妈": MUM}, me=None, shown={MUM: "妈妈"})
    q = parse("我和妈妈", nobody)
    assert q.people == (MUM,)


def test_understood_names_the_people_in_the_question_language() -> None:
    assert parse("我和妈妈去年的照片").understood[-1] == "人物：我、妈妈"
    assert parse("only Alice and me").understood[-1] == "people: Alice, me (nobody else)"


def test_without_people_nothing_changes() -> None:
    empty = PeopleDirectory()
    q = parse("我和妈妈在雪地里合影", empty)
    assert q.people == () and "妈妈" in q.semantic


def test_a_known_birthday_is_a_date_and_an_unknown_one_a_person() -> None:
    known = PeopleDirectory(PEOPLE.names, me=ME, shown=PEOPLE.shown, birthdays={MUM: (5, 3), ME: (2, 29)})
    q = parse("妈妈的生日", known)
    assert (q.birthday_of, q.people, q.semantic) == ((MUM,), (), "")
    assert q.understood == ["妈妈的生日：每年 5月3日前后"]
    q = parse("cake on Mum's birthday", known)
    assert (q.birthday_of, q.semantic) == ((MUM,), "cake")
    assert q.understood == ["妈妈's birthday: May 3 (±1 day), any year"]
    assert parse("我的生日蛋糕", known).birthday_of == (ME,)
    # Alice has no birthday on record: she must be in the photo, and 生日 is searched
    q = parse("Alice的生日", known)
    assert (q.birthday_of, q.people) == ((), (ALICE,)) and "生日" in q.semantic
