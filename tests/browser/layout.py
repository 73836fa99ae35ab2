"""What a person sees of a screen's layout: does it fit the width, is any text cut off, can
every control be reached, how much of the screen do fixed bars cover (WCAG 1.4.4, 1.4.10)."""

from __future__ import annotations

from playwright.sync_api import Page

# Twice the root font size the stylesheet sets: what a phone's largest text setting does.
LARGE_TEXT = "225%"
NARROW = {"width": 320, "height": 568}  # WCAG 1.4.10: 320 CSS px, no sideways scrolling

_LAYOUT = """() => {
    // What runs off the screen sideways: the innermost elements past the right edge.
    const wide = () => [...document.querySelectorAll('body *')]
        .filter((el) => el.getBoundingClientRect().right > innerWidth + 1)
        .filter((el) => ![...el.children].some((c) => c.getBoundingClientRect().right > innerWidth + 1))
        .map((el) => el.outerHTML.slice(0, 80));
    const visible = (el) => el.offsetWidth > 0 || el.offsetHeight > 0;
    const fixed = [...document.querySelectorAll('body *')].filter((el) =>
        ['fixed', 'sticky'].includes(getComputedStyle(el).position) && visible(el) && el.id !== 'status'
        && el.tagName !== 'DIALOG');
    // How much of the screen they cover, where they stand now (sticky bars at the bottom too).
    const covered = fixed.map((el) => el.getBoundingClientRect())
        .map((r) => Math.max(0, Math.min(r.bottom, innerHeight) - Math.max(r.top, 0)))
        .reduce((a, b) => a + b, 0);
    const texts = 'button, .button, .navlink .label, .face, label, legend, '
        + 'h1, h2, h3, p, li, th, td, summary';
    const cut = [...document.querySelectorAll(texts)]
        .filter((el) => visible(el) && !el.closest('.vh'))
        .filter((el) => el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'auto')
        .map((el) => el.textContent.trim().slice(0, 40));
    return {fixed: fixed.map((el) => el.className || el.id), covered: covered / innerHeight, cut,
            wide: document.documentElement.scrollWidth > innerWidth + 1 ? wide() : []};
}"""

_UNREACHABLE = """(controls) => {
    const open = document.querySelector('dialog[open]');
    return [...(open || document).querySelectorAll(controls)]
    .filter((el) => el.offsetParent !== null || el.closest('dialog[open]'))
    .filter((el) => el.getClientRects().length)
    .filter((el) => {
        const target = el.type === 'radio' ? el.parentElement : el;
        target.scrollIntoView({block: 'center'});
        const r = target.getBoundingClientRect();
        const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return !(hit && (target.contains(hit) || hit.contains(target)));
    }).map((el) => el.outerHTML.slice(0, 100));
}"""

CONTROLS = ", ".join(
    [
        *(f"main {c}" for c in ("button", "a", "input", "select", "textarea", "summary")),
        "nav a",
        "dialog button",
        "dialog a",
    ]
)


def large_text(page: Page) -> None:
    """The root font size at twice the normal; the app follows it (fitBars) within a moment."""
    page.evaluate(f"document.documentElement.style.fontSize = '{LARGE_TEXT}'")
    page.wait_for_timeout(200)


def layout(page: Page) -> dict:
    """{fixed: bars fixed or sticky, covered: the fraction of the screen they cover,
    cut: texts cut off sideways, wide: what runs off the screen when the page scrolls sideways}."""
    return page.evaluate(_LAYOUT)


def unreachable(page: Page) -> list[str]:
    """Controls that, scrolled to, are not the element at their own centre (covered by a bar,
    off the screen): a person cannot tap them. In an open dialog, only the dialog's."""
    found = page.evaluate(_UNREACHABLE, CONTROLS)
    page.evaluate("window.scrollTo(0, 0)")
    return found


def scale_rows(page: Page) -> list[dict]:
    """Each answer scale on the screen: {rows: the number of buttons in each row, digits: of its
    longest answer}."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.scale')].filter((s) => s.offsetParent !== null).map((s) => {
            const rows = new Map();
            for (const opt of s.children) rows.set(opt.offsetTop, (rows.get(opt.offsetTop) || 0) + 1);
            const digits = Math.max(...[...s.querySelectorAll('.face')].map((f) => f.textContent.length));
            return {rows: [...rows.values()], digits};
        })"""
    )
