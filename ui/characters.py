"""The Player and the Coach drawn as inline SVG, with a face for each mood of the exchange.

Everything here is built from the constants below: no binary asset, no external request, and
no text from an agent or a user ever reaches an attribute or the markup. The mood is on the
character's element (`data-mood`) so a browser test can follow it; the motion is CSS only and
`prefers-reduced-motion` stills it.
"""

from __future__ import annotations

# The moods are _FACES' keys: idle (waiting or listening), thinking (before the first word), speaking (while
# the bubble fills), pleased (APPROVE), stern (the Coach on REJECT), chastened (the Player after a rejection),
# alarmed (ABORT or a circuit breaker), puzzled (ERROR).

MOOD_WORDS = {
    "idle": "waiting", "thinking": "thinking…", "speaking": "speaking", "pleased": "pleased",
    "stern": "stern", "chastened": "chastened", "alarmed": "alarmed", "puzzled": "puzzled",
}

LOOKS = {
    "player": {"colour": "#2563eb", "light": "#dbeafe", "skin": "#f6c9a0", "hair": "#3f2a1d"},
    "coach": {"colour": "#7c3aed", "light": "#ede9fe", "skin": "#e8b48a", "hair": "#9ca3af"},
}

# Faces on a 120 × 120 canvas: eyes at (46, 62) and (74, 62), mouth around (60, 84).
_INK = 'fill="none" stroke="#1f2937" stroke-width="3.2" stroke-linecap="round"'
_EYES = {
    "open": '<g class="pc-eyes"><circle cx="46" cy="62" r="4.2" fill="#1f2937"/><circle cx="74" cy="62" r="4.2" fill="#1f2937"/></g>',
    "up": '<g class="pc-eyes"><circle cx="48" cy="59" r="4" fill="#1f2937"/><circle cx="76" cy="59" r="4" fill="#1f2937"/></g>',
    "happy": f'<path d="M40 64 Q46 56 52 64 M68 64 Q74 56 80 64" {_INK}/>',
    "narrow": f'<path d="M40 62 L52 62 M68 62 L80 62" {_INK}/>',
    "down": '<g><circle cx="45" cy="65" r="3.6" fill="#1f2937"/><circle cx="73" cy="65" r="3.6" fill="#1f2937"/></g>',
    "wide": ('<g><circle cx="46" cy="61" r="7" fill="#fff" stroke="#1f2937" stroke-width="2"/><circle cx="46" cy="61" r="3" '
             'fill="#1f2937"/><circle cx="74" cy="61" r="7" fill="#fff" stroke="#1f2937" stroke-width="2"/>'
             '<circle cx="74" cy="61" r="3" fill="#1f2937"/></g>'),
    "odd": '<g><circle cx="46" cy="63" r="3.6" fill="#1f2937"/><circle cx="74" cy="61" r="5" fill="#1f2937"/></g>',
}
_BROWS = {
    "calm": f'<path d="M39 51 Q46 48 53 51 M67 51 Q74 48 81 51" {_INK}/>',
    "stern": f'<path d="M38 47 L53 54 M82 47 L67 54" {_INK}/>',
    "sad": f'<path d="M38 54 L52 48 M82 54 L68 48" {_INK}/>',
    "high": f'<path d="M38 46 Q46 39 54 46 M66 46 Q74 39 82 46" {_INK}/>',
    "one": f'<path d="M39 52 L53 52 M66 47 Q74 38 82 45" {_INK}/>',
}
_MOUTHS = {
    "smile": f'<path d="M50 82 Q60 89 70 82" {_INK}/>',
    "small": f'<path d="M55 85 L65 83" {_INK}/>',
    "talk": '<ellipse class="pc-mouth" cx="60" cy="84" rx="7" ry="5.5" fill="#7f1d1d"/>',
    "grin": '<path d="M46 79 Q60 97 74 79 Z" fill="#7f1d1d" stroke="#1f2937" stroke-width="2.4" stroke-linejoin="round"/>',
    "flat": f'<path d="M50 85 L70 85" {_INK}/>',
    "frown": f'<path d="M50 88 Q60 80 70 88" {_INK}/>',
    "o": '<ellipse cx="60" cy="86" rx="5.5" ry="7.5" fill="#7f1d1d" stroke="#1f2937" stroke-width="2"/>',
    "wavy": f'<path d="M49 85 Q54 80 59 85 T69 85" {_INK}/>',
}
_EXTRAS = {
    "thinking": ('<g class="pc-dots" fill="#64748b"><circle cx="92" cy="22" r="3.5"/><circle cx="102" cy="16" r="3.5"/>'
                 '<circle cx="112" cy="10" r="3.5"/></g>'),
    "pleased": '<path class="pc-spark" d="M100 14 l3 7 7 3 -7 3 -3 7 -3 -7 -7 -3 7 -3 z" fill="#f59e0b"/>',
    "chastened": '<path d="M88 44 q5 8 0 11 q-5 -3 0 -11 z" fill="#60a5fa"/>',
    "alarmed": ('<g class="pc-alert"><rect x="99" y="6" width="7" height="20" rx="3" fill="#dc2626"/>'
                '<circle cx="102.5" cy="32" r="4" fill="#dc2626"/></g>'),
    "puzzled": ('<path class="pc-query" d="M96 16 q0 -9 9 -9 q9 0 9 8 q0 6 -8 9 v5" fill="none" stroke="#d97706" '
                'stroke-width="4" stroke-linecap="round"/><circle cx="106" cy="37" r="2.8" fill="#d97706"/>'),
}
_FACES = {  # mood: (eyes, brows, mouth)
    "idle": ("open", "calm", "smile"),
    "thinking": ("up", "calm", "small"),
    "speaking": ("open", "calm", "talk"),
    "pleased": ("happy", "calm", "grin"),
    "stern": ("narrow", "stern", "flat"),
    "chastened": ("down", "sad", "frown"),
    "alarmed": ("wide", "high", "o"),
    "puzzled": ("odd", "one", "wavy"),
}


def _outfit(role: str) -> str:
    """What tells them apart at a glance: the Player's cap, the Coach's grey hair, glasses and whistle."""
    look = LOOKS[role]
    if role == "player":
        return (f'<path d="M24 56 Q24 22 60 22 Q96 22 96 56 Q80 44 60 44 Q40 44 24 56 Z" fill="{look["colour"]}"/>'
                f'<path d="M86 50 Q104 50 110 58 Q96 58 84 56 Z" fill="{look["colour"]}"/>'
                '<circle cx="60" cy="24" r="4" fill="#1e3a8a"/>')
    return (f'<path d="M25 58 Q22 26 60 24 Q98 26 95 58 Q92 40 60 38 Q28 40 25 58 Z" fill="{look["hair"]}"/>'
            '<g fill="none" stroke="#374151" stroke-width="2.2"><circle cx="46" cy="62" r="10"/><circle cx="74" cy="62" r="10"/>'
            '<path d="M56 62 L64 62"/></g>'
            '<path d="M44 104 Q60 116 76 104" fill="none" stroke="#111827" stroke-width="1.6"/>'
            '<rect x="70" y="108" width="12" height="7" rx="3" fill="#9ca3af" stroke="#4b5563" stroke-width="1.2"/>')


def svg(role: str, mood: str) -> str:
    """The character's portrait for a mood, as inline SVG markup (constants only)."""
    look = LOOKS[role]
    eyes, brows, mouth = _FACES[mood]
    name = "Player" if role == "player" else "Coach"
    return (
        f'<svg class="pc-avatar" viewBox="0 0 120 120" width="76" height="76" role="img" '
        f'aria-label="{name}, {MOOD_WORDS[mood]}" xmlns="http://www.w3.org/2000/svg">'
        f'<path d="M14 120 Q16 94 60 94 Q104 94 106 120 Z" fill="{look["colour"]}"/>'
        f'<g class="pc-head"><circle cx="60" cy="64" r="36" fill="{look["skin"]}"/>'
        f'<circle cx="36" cy="76" r="5" fill="#f87171" opacity=".25"/><circle cx="84" cy="76" r="5" fill="#f87171" opacity=".25"/>'
        f'{_outfit(role)}{_EYES[eyes]}{_BROWS[brows]}{_MOUTHS[mouth]}</g>'
        f'{_EXTRAS.get(mood, "")}</svg>'
    )


CSS = """
.pc-avatar{flex:none;overflow:visible}
.pc-avatar .pc-eyes{transform-box:fill-box;transform-origin:center;animation:pc-blink-eyes 4.5s infinite}
@keyframes pc-blink-eyes{0%,94%,100%{transform:scaleY(1)}96%{transform:scaleY(.1)}}
.pc-mood-speaking .pc-mouth{transform-box:fill-box;transform-origin:center;animation:pc-talk .22s ease-in-out infinite alternate}
@keyframes pc-talk{from{transform:scaleY(.25)}to{transform:scaleY(1.1)}}
.pc-mood-thinking .pc-dots circle{animation:pc-dot 1.2s ease-in-out infinite}
.pc-mood-thinking .pc-dots circle:nth-child(2){animation-delay:.2s}
.pc-mood-thinking .pc-dots circle:nth-child(3){animation-delay:.4s}
@keyframes pc-dot{0%,100%{opacity:.25}50%{opacity:1}}
.pc-mood-pleased .pc-head{transform-box:fill-box;transform-origin:bottom;animation:pc-bounce .6s ease-out 2}
@keyframes pc-bounce{50%{transform:translateY(-5px)}}
.pc-mood-pleased .pc-spark{transform-box:fill-box;transform-origin:center;animation:pc-twinkle 1.4s ease-in-out infinite}
@keyframes pc-twinkle{50%{transform:scale(.6) rotate(45deg)}}
.pc-mood-alarmed .pc-head{transform-box:fill-box;transform-origin:center;animation:pc-shake .12s linear 6}
@keyframes pc-shake{25%{transform:translateX(-3px)}75%{transform:translateX(3px)}}
.pc-mood-stern .pc-head{transform-box:fill-box;transform-origin:center;animation:pc-nod .5s ease-in-out 1}
@keyframes pc-nod{50%{transform:rotate(-4deg)}}
.pc-mood-chastened .pc-head{transform:translateY(3px)}
.pc-mood-puzzled .pc-head{transform-box:fill-box;transform-origin:center;transform:rotate(6deg)}
@media (prefers-reduced-motion: reduce){
  .pc-char *, .pc-char *:before, .pc-char *:after{animation:none !important;transition:none !important}
}
"""
