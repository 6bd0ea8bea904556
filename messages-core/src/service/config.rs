//! The service's settings: [`ServiceConfig`].

use crate::cache::breaker::BreakerConfig;
use crate::live::LiveConfig;
use crate::message::Limits;
use crate::page::PageSize;
use crate::reaction::ReactionLimits;
use crate::read::UnreadMax;
use crate::replies::Participants;

/// Settings of the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Limits on message input. Default: [`Limits::default`].
    pub limits: Limits,
    /// How many of a thread's newest messages the cache keeps. Default 200, the largest page.
    pub window: PageSize,
    /// When to stop calling a failing cache for a while. Default: [`BreakerConfig::default`].
    pub breaker: BreakerConfig,
    /// Live delivery to followers. Default: [`LiveConfig::default`].
    pub live: LiveConfig,
    /// Bounds of reactions. Default: [`ReactionLimits::default`].
    pub reactions: ReactionLimits,
    /// How far unread messages are counted. Default: [`UnreadMax::DEFAULT`] (1,000).
    pub unread_max: UnreadMax,
    /// How many participants a root's reply summary names. Default:
    /// [`Participants::DEFAULT`] (5).
    pub participants: Participants,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            limits: Limits::default(),
            window: PageSize::MAX_SIZE,
            breaker: BreakerConfig::default(),
            live: LiveConfig::default(),
            reactions: ReactionLimits::default(),
            unread_max: UnreadMax::DEFAULT,
            participants: Participants::DEFAULT,
        }
    }
}
