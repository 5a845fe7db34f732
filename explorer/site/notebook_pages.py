"""MkDocs hooks for the companion notebooks (`docs/<section>/<article>.notebook.py`) that mkdocs-jupyter renders.

- Offline: nbconvert's page template loads MathJax from a `mathjax_url` (mkdocs.yml sets it empty,
  which leaves `<script src="">`: Material's instant navigation would re-run that as the page's own
  URL) and carries an import of mermaid from cdnjs for diagrams. The notebooks use neither, so both
  scripts are dropped; any other script or stylesheet that would load from outside fails the build.
- Downloads: each notebook page starts with links to the notebook (`<article>.ipynb`, converted
  here by jupytext, without outputs), the percent script it is kept as, and the article it goes with.

Zensical runs no hooks and renders no notebooks: there the `.notebook.py` files are copied as they
are, and an article's "Run this yourself" link downloads the script.
"""

import html
import re
from pathlib import Path

from mkdocs.exceptions import PluginError

SUFFIX = ".notebook.py"
MATHJAX = re.compile(r'\s*<!-- Load mathjax -->\s*<script src="">\s*</script>\s*<!-- MathJax configuration -->\s*'
                     r'<script type="text/x-mathjax-config">.*?</script>\s*<!-- End of mathjax configuration -->', re.S)
MERMAID = re.compile(r'<script type="module">\s*document\.addEventListener\("DOMContentLoaded", async \(\) => \{\s*'
                     r'const diagrams = document\.querySelectorAll\("\.jp-Mermaid > pre\.mermaid"\);.*?</script>', re.S)
OUTSIDE = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//|import\(\s*["'](?:https?:)?//|url\(\s*["']?(?:https?:)?//""", re.I)


def is_notebook(page) -> bool:
    return page.file.src_uri.endswith(SUFFIX)


def article_of(src_uri: str) -> str:
    """`curriculum/backprop.notebook.py` -> `curriculum/backprop.md`."""
    return src_uri.removesuffix(SUFFIX) + ".md"


def downloads(src_uri: str) -> dict[str, str]:
    """The files a notebook page offers, by name, in the page's own folder."""
    stem = Path(src_uri).name.removesuffix(SUFFIX)
    return {"ipynb": f"{stem}.ipynb", "py": f"{stem}{SUFFIX}"}


def on_page_content(html_text: str, page, config, files):
    if not is_notebook(page):
        return html_text
    where = page.file.src_uri
    html_text, mathjax = MATHJAX.subn("", html_text)
    html_text, mermaid = MERMAID.subn("", html_text)
    if mathjax != 1 or mermaid != 1:
        raise PluginError(f"{where}: mkdocs-jupyter's page no longer has the MathJax and mermaid scripts this hook removes "
                          f"(found {mathjax} and {mermaid}): check explorer/site/notebook_pages.py against the pinned version")
    outside = OUTSIDE.search(html_text)
    if outside:
        raise PluginError(f"{where}: the notebook page would load {outside.group(0)!r} from outside the site")
    article = files.get_file_from_path(article_of(where))
    names = downloads(where)
    back = ""
    if article is not None:
        back = f' · back to <a href="{html.escape(article.url_relative_to(page.file))}">the article</a>'
    bar = (f'<p class="explorer-notebook-downloads">Download this notebook: <a href="{names["ipynb"]}" download>{names["ipynb"]}</a>'
           f' (Jupyter) or <a href="{names["py"]}" download>{names["py"]}</a> (a jupytext percent script){back}.</p>')
    head, title, rest = html_text.partition("</h1>")  # under the notebook's title
    return head + title + bar + rest if title else bar + html_text


def on_post_build(config):
    """Write each notebook's downloads beside its page: the percent script and its .ipynb."""
    import jupytext

    docs, site = Path(config["docs_dir"]), Path(config["site_dir"])
    for script in sorted(docs.rglob(f"*{SUFFIX}")):
        src_uri = script.relative_to(docs).as_posix()
        folder = site / src_uri.removesuffix(".py") if config["use_directory_urls"] else site / Path(src_uri).parent
        if not folder.is_dir():
            continue  # not rendered (excluded from the build)
        names = downloads(src_uri)
        (folder / names["py"]).write_text(script.read_text())
        jupytext.write(jupytext.read(script), folder / names["ipynb"], fmt="ipynb")
