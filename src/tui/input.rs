//! Terminal events to view-state updates: a pending question takes the key first,
//! then an open text field, then the keymap; the mouse goes to `mouse.rs` (clicks
//! select rows and panes in every view, the wheel scrolls the pane under it).

use ratatui::crossterm::event::{Event as TermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::Rect;

use super::keys::Keymap;
use super::model::Fleet;
use super::mouse;
use super::view::{Request, TextKey, ViewState};

/// Routes one terminal event: a pending question first, then an open text field,
/// then the keymap. `live` is the run, `travelled` what time travel shows instead;
/// `size` is the terminal's (pages and mouse hits are counted with it).
pub fn on_terminal_event(
    event: TermEvent,
    vs: &mut ViewState,
    live: &Fleet,
    travelled: Option<&Fleet>,
    keymap: &Keymap,
    size: Option<Rect>,
) -> Vec<Request> {
    if let Some(size) = size {
        vs.terminal = size;
    }
    let shown = travelled.unwrap_or(live);
    let total = live.records.len();
    match event {
        TermEvent::Key(key) if key.kind != KeyEventKind::Release => {
            if vs.confirm.is_some() {
                let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
                // Ctrl-C at the quit question is a second Ctrl-C: it means quit.
                let quits = ctrl
                    && key.code == KeyCode::Char('c')
                    && vs.confirm.as_ref().is_some_and(|c| c.on_yes == [Request::Quit]);
                let yes = (matches!(key.code, KeyCode::Char('y' | 'Y')) && !ctrl) || quits;
                // Checked against the run as it is now: a held task answered from
                // elsewhere since the preview is left out.
                return vs.answer_with(live, yes);
            }
            if vs.palette.is_some() || vs.filter_input.is_some() {
                if let Some(text) = text_key(key) {
                    return vs.type_key(shown, total, text);
                }
                return Vec::new();
            }
            match key_name(key).and_then(|name| keymap.action(&name)) {
                Some(action) => vs.update(shown, total, action),
                None => Vec::new(),
            }
        }
        TermEvent::Mouse(event) => mouse::on_mouse(vs, shown, total, event),
        TermEvent::Resize(width, height) => {
            vs.terminal = Rect::new(0, 0, width, height);
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// The keymap's name for a key: "j", "G", "ctrl-c", "enter", "pgdn"…
pub fn key_name(key: KeyEvent) -> Option<String> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let name = match key.code {
        KeyCode::Char(c) if ctrl => format!("ctrl-{}", c.to_ascii_lowercase()),
        // A blank is no name a keys.toml could hold readably.
        KeyCode::Char(' ') => "space".into(),
        KeyCode::Char(c) => c.to_string(),
        KeyCode::Enter => "enter".into(),
        KeyCode::Esc => "esc".into(),
        KeyCode::Tab => "tab".into(),
        KeyCode::BackTab => "backtab".into(),
        KeyCode::Up => "up".into(),
        KeyCode::Down => "down".into(),
        KeyCode::Left => "left".into(),
        KeyCode::Right => "right".into(),
        KeyCode::PageUp => "pgup".into(),
        KeyCode::PageDown => "pgdn".into(),
        KeyCode::Home => "home".into(),
        KeyCode::End => "end".into(),
        KeyCode::Backspace => "backspace".into(),
        KeyCode::Delete => "delete".into(),
        KeyCode::F(n) => format!("f{n}"),
        _ => return None,
    };
    Some(name)
}

/// A key as a text field sees it; `None` for keys a field ignores.
fn text_key(key: KeyEvent) -> Option<TextKey> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        // ctrl-c leaves the field, like Esc; ctrl-u and ctrl-w delete as in a shell.
        return match key.code {
            KeyCode::Char('c') => Some(TextKey::Esc),
            KeyCode::Char('u') => Some(TextKey::DeleteToStart),
            KeyCode::Char('w') => Some(TextKey::DeleteWord),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char(c) => TextKey::Char(c),
        KeyCode::Backspace => TextKey::Backspace,
        KeyCode::Delete => TextKey::Delete,
        KeyCode::Left => TextKey::Left,
        KeyCode::Right => TextKey::Right,
        KeyCode::Home => TextKey::Home,
        KeyCode::End => TextKey::End,
        KeyCode::Tab => TextKey::Tab,
        KeyCode::Enter => TextKey::Enter,
        KeyCode::Esc => TextKey::Esc,
        KeyCode::Up => TextKey::Up,
        KeyCode::Down => TextKey::Down,
        _ => return None,
    })
}
