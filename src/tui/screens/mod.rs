//! One module per screen or overlay, each holding what the screen remembers, the
//! keys it handles (functions of `&mut ViewState` and the `&Fleet` on show) and its
//! draw function (pure: a `&Scene` in, widgets out).

pub mod confirm;
pub mod dashboard;
pub mod dead_letters;
pub mod detail;
pub mod disagreement;
pub mod held;
pub mod help;
pub mod palette;
pub mod tasks;
pub mod tasks_order;
pub mod timeline;
pub mod travel;
