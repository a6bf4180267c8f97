"""The mail lab: a real, private Postfix instance on loopback for end-to-end tests.

``tests.lab.fixtures`` is a pytest plugin providing the session-scoped ``mail_lab`` fixture
(a :class:`tests.lab.postfix.MailLab`). See ``../shared/reference/MAIL-LAB.md`` for the recipe
this follows and its gotchas.
"""
