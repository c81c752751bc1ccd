"""How a service writes a change to rows: the shapes every app's services.py repeated.

- `unique_or(error)`: a transaction in which the database's refusal of a duplicate (a unique
  constraint: two requests creating the same slug, name or token at once) becomes `error`, the
  4xx the caller chose, instead of a 500; nothing written in it stays.
- `save(...)`: fields of a row set, saved (those fields only) and audited in the caller's
  transaction.
- `change(...)`: one field of a locked row set to a new value, audited with its value before and
  after; nothing at all is written when it holds that value already.
"""

from contextlib import contextmanager

from django.db import IntegrityError, transaction

from accesscontrol.audit import services as audit


@contextmanager
def unique_or(error: Exception):
    """`with unique_or(ValidationError(...)):` what is written inside, in a transaction (a
    savepoint within the caller's), or `error` raised if a unique constraint refuses it."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError:
        raise error from None


def save(actor, row, action, values: dict, *, target=None, **record):
    """`values` (field: value) set on `row`, only those fields saved, and the event `action`
    recorded about `target` (the row itself unless given); `record`: audit.record's
    organization, workspace, target_label, before and after. In the caller's transaction."""
    for field, value in values.items():
        setattr(row, field, value)
    row.save(update_fields=list(values))
    return audit.record(actor, action, row if target is None else target, **record)


def change(actor, row, field, value, action, *, key=None, show=None, check=None, **record) -> bool:
    """Set one field of `row` (locked by the caller, in its transaction) to `value`, audited as
    `action` with `{key: before}` and `{key: after}` (`key`: the field's name unless given;
    `show`: what the audit row keeps of a value, the value itself unless given). False, and
    nothing written, when the field holds that value already. `check()` runs once the change is
    known to be one, before anything is written (a ValidationError from it refuses the change);
    `record`: as for `save`."""
    before = getattr(row, field)
    if before == value:
        return False
    if check is not None:
        check()
    key, show = key or field, show or (lambda v: v)
    save(
        actor,
        row,
        action,
        {field: value},
        before={key: show(before)},
        after={key: show(value)},
        **record,
    )
    return True
