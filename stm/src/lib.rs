//! A small state-machine driver: states are the variants of an enum, handlers return the next
//! state, and transitions happen in exactly one place ([`jump`]).
//!
//! A connection type implements [`Machine`]: it keeps an [`Stm`] among its fields and supplies
//! hooks. The event loop calls [`read`], [`write()`] or [`block`] when an endpoint of the
//! connection is ready or when work it handed to another thread completes; the hook for the
//! current state runs and returns the next state; if that differs, the departure hook of the
//! old state and the arrival hook of the new one run, in that order. An arrival hook may itself
//! move on (it returns the state to be in), so "enter CONNECTING, find no address left, go to
//! ERROR" is one chain of transitions, each logged at debug level.
//!
//! The state value lives in [`Stm`], whose only setter is private to this crate: nothing but
//! the driver changes it.
#![deny(missing_docs)]

use std::fmt::Display;

/// The current state of one machine. Read it with [`Stm::current`]; change it only by
/// returning a new state from a hook.
#[derive(Debug, Clone)]
pub struct Stm<S> {
    current: S,
    started: bool,
}

impl<S: Copy> Stm<S> {
    /// A machine that will start in `initial` (its arrival hook runs on [`start`]).
    pub fn new(initial: S) -> Self {
        Stm {
            current: initial,
            started: false,
        }
    }

    /// The state the machine is in.
    pub fn current(&self) -> S {
        self.current
    }
}

/// What a connection supplies to be driven as a state machine. `C` is the context the loop
/// lends to every hook (its registry, its configuration…), so that hooks can act on the loop
/// without the connection holding a reference to it.
pub trait Machine<C: ?Sized> {
    /// The state enum. `Display` names it in logs (`CONNECTING`, `COPY`…).
    type State: Copy + PartialEq + Display;
    /// What the loop reports with a read or write readiness (which endpoint, for example).
    type Event: ?Sized;

    /// The machine's state holder.
    fn stm(&mut self) -> &mut Stm<Self::State>;

    /// Runs when `state` is entered; returns the state to be in (`state` to stay).
    fn on_arrival(&mut self, _ctx: &mut C, state: Self::State) -> Self::State {
        state
    }
    /// Runs when `state` is left.
    fn on_departure(&mut self, _ctx: &mut C, _state: Self::State) {}
    /// An endpoint can be read.
    fn on_read(&mut self, _ctx: &mut C, state: Self::State, _event: &Self::Event) -> Self::State {
        state
    }
    /// An endpoint can be written.
    fn on_write(&mut self, _ctx: &mut C, state: Self::State, _event: &Self::Event) -> Self::State {
        state
    }
    /// Work done off the loop (name resolution, a child process) has finished.
    fn on_block(&mut self, _ctx: &mut C, state: Self::State) -> Self::State {
        state
    }
    /// A short name for log lines, such as the client's address.
    fn label(&self) -> String {
        String::new()
    }
}

/// How many transitions one event may chain before the driver stops it: a guard against two
/// arrival hooks that bounce between each other.
pub const MAX_CHAIN: usize = 64;

/// Enters the initial state: runs its arrival hook (and any chain it starts).
pub fn start<C: ?Sized, M: Machine<C> + ?Sized>(m: &mut M, ctx: &mut C) -> M::State {
    let first = m.stm().current;
    if m.stm().started {
        return first;
    }
    m.stm().started = true;
    let next = m.on_arrival(ctx, first);
    jump(m, ctx, next)
}

/// Dispatches a read readiness to the current state's handler.
pub fn read<C: ?Sized, M: Machine<C> + ?Sized>(
    m: &mut M,
    ctx: &mut C,
    event: &M::Event,
) -> M::State {
    let state = m.stm().current;
    let next = m.on_read(ctx, state, event);
    jump(m, ctx, next)
}

/// Dispatches a write readiness to the current state's handler.
pub fn write<C: ?Sized, M: Machine<C> + ?Sized>(
    m: &mut M,
    ctx: &mut C,
    event: &M::Event,
) -> M::State {
    let state = m.stm().current;
    let next = m.on_write(ctx, state, event);
    jump(m, ctx, next)
}

/// Dispatches the completion of off-loop work to the current state's handler.
pub fn block<C: ?Sized, M: Machine<C> + ?Sized>(m: &mut M, ctx: &mut C) -> M::State {
    let state = m.stm().current;
    let next = m.on_block(ctx, state);
    jump(m, ctx, next)
}

/// Moves the machine to `next` if it is not there yet: departure hook, then arrival hook,
/// chained while arrival hooks move on. This is the one place a state changes.
pub fn jump<C: ?Sized, M: Machine<C> + ?Sized>(
    m: &mut M,
    ctx: &mut C,
    mut next: M::State,
) -> M::State {
    for _ in 0..MAX_CHAIN {
        let current = m.stm().current;
        if next == current {
            return current;
        }
        m.on_departure(ctx, current);
        log::debug!("{} {} -> {}", m.label(), current, next);
        m.stm().current = next;
        next = m.on_arrival(ctx, next);
    }
    panic!("state machine chained more than {MAX_CHAIN} transitions in one event");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Light {
        Red,
        Green,
        Yellow,
        Broken,
    }

    impl fmt::Display for Light {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            let name = match self {
                Light::Red => "RED",
                Light::Green => "GREEN",
                Light::Yellow => "YELLOW",
                Light::Broken => "BROKEN",
            };
            f.write_str(name)
        }
    }

    struct Lamp {
        stm: Stm<Light>,
        trace: Vec<String>,
        bulbs: u32,
    }

    impl Machine<()> for Lamp {
        type State = Light;
        type Event = u32;

        fn stm(&mut self) -> &mut Stm<Light> {
            &mut self.stm
        }
        fn on_arrival(&mut self, _: &mut (), s: Light) -> Light {
            self.trace.push(format!("+{s}"));
            // Arriving at GREEN with no bulb left breaks the lamp at once.
            if s == Light::Green && self.bulbs == 0 {
                Light::Broken
            } else {
                s
            }
        }
        fn on_departure(&mut self, _: &mut (), s: Light) {
            self.trace.push(format!("-{s}"));
        }
        fn on_read(&mut self, _: &mut (), s: Light, ev: &u32) -> Light {
            self.trace.push(format!("read{ev}@{s}"));
            match s {
                Light::Red => Light::Green,
                Light::Green => Light::Yellow,
                Light::Yellow => Light::Red,
                Light::Broken => Light::Broken,
            }
        }
        fn on_block(&mut self, _: &mut (), s: Light) -> Light {
            self.bulbs = 0;
            s
        }
    }

    fn lamp(bulbs: u32) -> Lamp {
        Lamp {
            stm: Stm::new(Light::Red),
            trace: Vec::new(),
            bulbs,
        }
    }

    #[test]
    fn hooks_run_in_order() {
        let mut l = lamp(1);
        assert_eq!(start(&mut l, &mut ()), Light::Red);
        assert_eq!(
            start(&mut l, &mut ()),
            Light::Red,
            "starting twice does nothing"
        );
        assert_eq!(read(&mut l, &mut (), &7), Light::Green);
        assert_eq!(l.trace, ["+RED", "read7@RED", "-RED", "+GREEN"]);
    }

    #[test]
    fn staying_runs_no_hooks() {
        let mut l = lamp(1);
        start(&mut l, &mut ());
        l.trace.clear();
        assert_eq!(write(&mut l, &mut (), &1), Light::Red);
        assert!(l.trace.is_empty());
    }

    #[test]
    fn arrival_can_move_on() {
        let mut l = lamp(1);
        start(&mut l, &mut ());
        block(&mut l, &mut ());
        l.trace.clear();
        assert_eq!(read(&mut l, &mut (), &2), Light::Broken);
        assert_eq!(
            l.trace,
            ["read2@RED", "-RED", "+GREEN", "-GREEN", "+BROKEN"]
        );
        assert_eq!(l.stm.current(), Light::Broken);
    }

    struct Bouncer {
        stm: Stm<Light>,
    }

    impl Machine<()> for Bouncer {
        type State = Light;
        type Event = ();
        fn stm(&mut self) -> &mut Stm<Light> {
            &mut self.stm
        }
        fn on_arrival(&mut self, _: &mut (), s: Light) -> Light {
            if s == Light::Red {
                Light::Green
            } else {
                Light::Red
            }
        }
    }

    #[test]
    #[should_panic(expected = "chained")]
    fn endless_chains_are_stopped() {
        let mut b = Bouncer {
            stm: Stm::new(Light::Yellow),
        };
        start(&mut b, &mut ());
    }
}
