//! Colours, or none at all when `NO_COLOR` is set: every style a screen uses comes
//! from here, so a monochrome terminal still tells states apart (bold, reverse).

use ratatui::style::{Color, Modifier, Style};

use crate::core::TaskStateName;

/// Colours, or none at all when `NO_COLOR` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    /// False under `NO_COLOR`: only bold/reverse/dim are used.
    pub color: bool,
}

impl Theme {
    /// A foreground colour, or the plain style without colours.
    pub fn fg(self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    /// The style of a task state's name.
    pub fn state(self, name: TaskStateName) -> Style {
        let color = match name {
            TaskStateName::Running => Color::Cyan,
            TaskStateName::Completed => Color::Green,
            TaskStateName::DeadLettered => Color::Red,
            TaskStateName::RetryWait => Color::Yellow,
            TaskStateName::Cancelled | TaskStateName::Skipped => Color::Magenta,
            TaskStateName::Queued => Color::Blue,
            TaskStateName::Blocked => Color::Gray,
            TaskStateName::Validating => Color::Magenta,
            // Waits for the operator, as a retry waits for its time.
            TaskStateName::AwaitingApproval => Color::Yellow,
        };
        let style = self.fg(color);
        if !self.color
            && matches!(name, TaskStateName::DeadLettered | TaskStateName::Running | TaskStateName::AwaitingApproval)
        {
            style.add_modifier(Modifier::BOLD)
        } else {
            style
        }
    }

    /// The selected row, and key names in the key bar.
    pub fn selected(self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}
