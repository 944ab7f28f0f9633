"""The report: the derivation as LaTeX (spec table, diagram, chains, layer form), and the PDF."""
