"""One module per dataset card, `<slug with underscores>.py`, defining `make_release(root) -> dict`: it writes under
`root` a tiny tree with the release's real folder names, file names and formats, and returns what building it with
the card's own spec must give: {"converted": items, "skipped": items} and optionally
{"classes": {category: instances}} and {"class_labels": {class label: instances}}.
`tests/data/test_card_fixtures.py` runs every card through its module."""
