"""Site glue: the MkDocs hook that embeds figures and the vendored Vega bundle."""
