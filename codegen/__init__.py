"""chainrule: files, templates and the command line, over chainrule.derive."""
