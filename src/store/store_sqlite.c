/* placeholder: written by the foundation work in progress */
