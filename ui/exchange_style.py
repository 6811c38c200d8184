"""The exchange's look: static CSS and one static script, no user text (ui/exchange_view.py draws with them).

Below 700 px (a phone) the characters stack, each check of a round card is a stacked line (the mark,
the constraint and the action, then the arithmetic in full), and the page follows the speaker.
"""

from ui import characters

CSS = """
<style>
.pc-stage{display:flex;gap:1rem;align-items:stretch}
.pc-char{flex:1 1 0;min-width:0;border:2px solid #e5e7eb;border-radius:14px;padding:.75rem 1rem;background:#fafbfc;
  transition:border-color .2s, box-shadow .2s}
.pc-char.pc-active{border-color:#2563eb;box-shadow:0 0 0 4px rgba(37,99,235,.15);background:#fff}
.pc-char.pc-coach.pc-active{border-color:#7c3aed;box-shadow:0 0 0 4px rgba(124,58,237,.15)}
.pc-who{display:flex;align-items:center;gap:.7rem;margin-bottom:.5rem}
.pc-name{font-weight:700;font-size:1.05rem}
.pc-role{color:#6b7280;font-size:.8rem}
.pc-mood{display:inline-block;margin-top:.15rem;font-size:.72rem;font-weight:600;color:#475569;background:#f1f5f9;
  border-radius:999px;padding:0 .5rem}
.pc-tag{margin-left:auto;font-size:.75rem;font-weight:700;padding:.1rem .5rem;border-radius:999px;background:#eef2ff;color:#3730a3}
.pc-APPROVE{background:#dcfce7;color:#166534}.pc-REJECT{background:#ffedd5;color:#9a3412}
.pc-ABORT{background:#fee2e2;color:#991b1b}
.pc-bubble{position:relative;background:#f1f5f9;border-radius:12px;padding:.65rem .8rem;font-size:.9rem;
  line-height:1.45;overflow-wrap:anywhere;min-height:4.5rem;max-height:24rem;overflow-y:auto}
.pc-active .pc-bubble{background:#eff6ff}
.pc-coach.pc-active .pc-bubble{background:#f5f3ff}
.pc-verdict{font-weight:700;border-radius:8px;padding:.2rem .5rem;margin:-.2rem -.3rem .4rem -.3rem}
.pc-status{font-size:.85rem;color:#374151;margin:.1rem 0 .5rem 0;font-weight:600}
.pc-quiet{color:#9ca3af;font-style:italic}
.pc-caret{display:inline-block;width:.5rem;height:1rem;background:#2563eb;margin-left:2px;vertical-align:text-bottom;
  animation:pc-blink 1s steps(2) infinite}
@keyframes pc-blink{50%{opacity:0}}
.pc-said{border-left:3px solid #cbd5e1;padding:.4rem .7rem;background:#f8fafc;border-radius:6px;font-size:.9rem;
  line-height:1.45;margin:.2rem 0 .6rem 0;overflow-wrap:anywhere}
@media (max-width: 700px){
  .pc-stage{flex-direction:column}
  /* each check a stacked line: the mark, the constraint and the action, then the arithmetic in full */
  [data-testid="stElementContainer"]:has(.pc-checks) + [data-testid="stElementContainer"] :is(table, tbody, tr){
    display:block;width:100%}
  [data-testid="stElementContainer"]:has(.pc-checks) + [data-testid="stElementContainer"] thead{display:none}
  [data-testid="stElementContainer"]:has(.pc-checks) + [data-testid="stElementContainer"] tr{
    border-bottom:1px solid #e5e7eb;padding:.35rem 0}
  [data-testid="stElementContainer"]:has(.pc-checks) + [data-testid="stElementContainer"] td{
    display:inline;border:none;padding:0 .4rem 0 0}
  [data-testid="stElementContainer"]:has(.pc-checks) + [data-testid="stElementContainer"] td:last-child{
    display:block;padding:.15rem 0 0 0;overflow-wrap:anywhere;white-space:normal}
}
""" + characters.CSS + """</style>
"""
FOLLOW = """<script>setTimeout(() => { if (window.innerWidth > 700) return;
  document.querySelector('.pc-char[data-role="ROLE"] .pc-bubble')?.scrollIntoView({block: 'nearest'}); }, 150);</script>"""
"""Static script (no user text): on a narrow screen, bring the speaking character's bubble into view."""
