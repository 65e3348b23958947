//! [`Registry`]: the registered ASAs and objectives (RFC 8991 section 2.3.2), with the checks
//! and error codes of the API, and what a discovery responder needs to know of each objective.

use std::collections::HashMap;

use super::GraspError;
use crate::wire::{Locator, Objective, Value};

/// An ASA's handle: a number the node gave it at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AsaId(pub u32);

/// How an objective is registered (RFC 8991 `register_obj`'s parameters).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct RegisterOptions {
    /// The time to live of discovery answers, in milliseconds (`None`: 600,000).
    pub ttl: Option<u32>,
    /// Discoverable at once, before any listen call.
    pub discoverable: bool,
    /// Other ASAs may register the same objective (all must ask for it).
    pub overlap: bool,
    /// Discovery answers carry a link-local locator.
    pub local: bool,
    /// Answer discovery in rapid mode: the objective with its synchronization value in the
    /// response.
    pub rapid: bool,
    /// Explicit locators for discovery answers, instead of this node's.
    pub locators: Vec<Locator>,
}

impl RegisterOptions {
    /// The discovery ttl in milliseconds.
    #[must_use]
    pub fn ttl(mut self, ms: u32) -> Self {
        self.ttl = Some(ms);
        self
    }

    /// Discoverable at once.
    #[must_use]
    pub fn discoverable(mut self, on: bool) -> Self {
        self.discoverable = on;
        self
    }

    /// Overlapping registrations allowed.
    #[must_use]
    pub fn overlap(mut self, on: bool) -> Self {
        self.overlap = on;
        self
    }

    /// Link-local locators in answers.
    #[must_use]
    pub fn local(mut self, on: bool) -> Self {
        self.local = on;
        self
    }

    /// Rapid mode.
    #[must_use]
    pub fn rapid(mut self, on: bool) -> Self {
        self.rapid = on;
        self
    }

    /// Explicit locators.
    #[must_use]
    pub fn locators(mut self, locators: Vec<Locator>) -> Self {
        self.locators = locators;
        self
    }
}

/// The default ttl of discovery answers: ten times the default timeout (RFC 8990 2.8.5).
pub const DEFAULT_RESPONSE_TTL_MS: u32 = 600_000;

/// One registered objective.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The objective as registered (its synchronization value set by `listen_synchronize`).
    pub objective: Objective,
    /// The ASAs that registered it.
    pub owners: Vec<AsaId>,
    /// The registration options.
    pub options: RegisterOptions,
    /// The TCP port its requests come to (0: none).
    pub port: u16,
    /// Answered in discovery.
    pub discoverable: bool,
    /// `listen_negotiate` was called (and not stopped).
    pub negotiating: bool,
    /// `listen_synchronize` was called (and not stopped).
    pub synchronizing: bool,
}

impl Registered {
    /// The ttl of discovery answers.
    pub fn ttl_ms(&self) -> u32 {
        self.options.ttl.unwrap_or(DEFAULT_RESPONSE_TTL_MS)
    }
}

/// The ASAs and objectives of a node.
#[derive(Debug)]
pub struct Registry {
    asas: HashMap<AsaId, String>,
    objectives: HashMap<String, Registered>,
    max_asas: usize,
    max_objectives: usize,
}

impl Registry {
    /// At most `max_asas` ASAs and `max_objectives` objectives.
    pub fn new(max_asas: usize, max_objectives: usize) -> Registry {
        Registry {
            asas: HashMap::new(),
            objectives: HashMap::new(),
            max_asas,
            max_objectives,
        }
    }

    /// Register an ASA named `name` under `id` (a fresh random number from the caller).
    pub fn register_asa(&mut self, id: AsaId, name: &str) -> Result<AsaId, GraspError> {
        if self.asas.values().any(|n| n == name) {
            return Err(GraspError::DupAsa);
        }
        if self.asas.len() >= self.max_asas {
            return Err(GraspError::AsaFull);
        }
        if self.asas.contains_key(&id) {
            return Err(GraspError::Unspec("handle clash".into()));
        }
        self.asas.insert(id, name.to_owned());
        Ok(id)
    }

    /// Deregister an ASA and its objectives (those others registered too stay theirs). Returns
    /// the objectives that went away.
    pub fn deregister_asa(&mut self, id: AsaId, name: &str) -> Result<Vec<String>, GraspError> {
        match self.asas.get(&id) {
            Some(n) if n == name => {}
            Some(_) => return Err(GraspError::NotYourAsa),
            None if self.asas.values().any(|n| n == name) => {
                return Err(GraspError::NotYourAsa);
            }
            None => return Err(GraspError::NoAsa),
        }
        self.asas.remove(&id);
        let mut gone = Vec::new();
        self.objectives.retain(|name, r| {
            r.owners.retain(|o| *o != id);
            let keep = !r.owners.is_empty();
            if !keep {
                gone.push(name.clone());
            }
            keep
        });
        Ok(gone)
    }

    /// `NoAsa` unless `id` is registered.
    pub fn check_asa(&self, id: AsaId) -> Result<(), GraspError> {
        if self.asas.contains_key(&id) {
            Ok(())
        } else {
            Err(GraspError::NoAsa)
        }
    }

    /// The checks of `register_obj` without registering: `Ok(true)` when it would join an
    /// overlapping registration (no new listening port needed).
    pub fn check_register(
        &self,
        asa: AsaId,
        obj: &Objective,
        options: &RegisterOptions,
    ) -> Result<bool, GraspError> {
        self.check_asa(asa)?;
        if obj.is_neg() && obj.is_synch() {
            return Err(GraspError::NotBoth);
        }
        if obj.is_dry() && !obj.is_neg() {
            return Err(GraspError::NotDry);
        }
        if let Some(r) = self.objectives.get(&obj.name) {
            if r.options.overlap && options.overlap && !r.owners.contains(&asa) {
                return Ok(true);
            }
            return Err(GraspError::ObjReg);
        }
        if self.objectives.len() >= self.max_objectives {
            return Err(GraspError::ObjFull);
        }
        Ok(false)
    }

    /// Register `obj` for `asa`, its requests coming to `port` (0: none).
    pub fn register_obj(
        &mut self,
        asa: AsaId,
        obj: &Objective,
        options: RegisterOptions,
        port: u16,
    ) -> Result<(), GraspError> {
        if self.check_register(asa, obj, &options)? {
            if let Some(r) = self.objectives.get_mut(&obj.name) {
                r.owners.push(asa);
            }
            return Ok(());
        }
        self.objectives.insert(
            obj.name.clone(),
            Registered {
                objective: obj.clone(),
                owners: vec![asa],
                discoverable: options.discoverable,
                options,
                port,
                negotiating: false,
                synchronizing: false,
            },
        );
        Ok(())
    }

    /// Deregister `obj` for `asa`; true when nobody holds it any more.
    pub fn deregister_obj(&mut self, asa: AsaId, name: &str) -> Result<bool, GraspError> {
        self.check_asa(asa)?;
        let r = self.objectives.get_mut(name).ok_or(GraspError::NotObj)?;
        if !r.owners.contains(&asa) {
            return Err(GraspError::NotYourObj);
        }
        r.owners.retain(|o| *o != asa);
        if r.owners.is_empty() {
            self.objectives.remove(name);
            return Ok(true);
        }
        Ok(false)
    }

    /// The registration of `name` by `asa`: `NoAsa`, `NotObj` or `NotYourObj` otherwise.
    pub fn owned_mut(&mut self, asa: AsaId, name: &str) -> Result<&mut Registered, GraspError> {
        self.check_asa(asa)?;
        let r = self
            .objectives
            .get_mut(name)
            .ok_or(GraspError::NotYourObj)?;
        if r.owners.contains(&asa) {
            Ok(r)
        } else {
            Err(GraspError::NotYourObj)
        }
    }

    /// Start answering negotiation requests for `name` (and discovery of it).
    pub fn listen_negotiate(&mut self, asa: AsaId, obj: &Objective) -> Result<u16, GraspError> {
        let r = self.owned_mut(asa, &obj.name)?;
        if !r.objective.is_neg() {
            return Err(GraspError::NotNeg);
        }
        r.negotiating = true;
        r.discoverable = true;
        Ok(r.port)
    }

    /// Stop answering negotiation requests for `name`.
    pub fn stop_negotiate(&mut self, asa: AsaId, name: &str) -> Result<(), GraspError> {
        self.owned_mut(asa, name)?.negotiating = false;
        Ok(())
    }

    /// Answer synchronization requests for `obj` with its value (and discovery of it).
    pub fn listen_synchronize(&mut self, asa: AsaId, obj: &Objective) -> Result<(), GraspError> {
        if !obj.is_synch() {
            return Err(GraspError::NotSynch);
        }
        let r = self.owned_mut(asa, &obj.name)?;
        if !r.objective.is_synch() {
            return Err(GraspError::NotSynch);
        }
        r.objective.value = obj.value.clone();
        r.synchronizing = true;
        r.discoverable = true;
        Ok(())
    }

    /// Stop answering synchronization requests for `name`.
    pub fn stop_synchronize(&mut self, asa: AsaId, name: &str) -> Result<(), GraspError> {
        self.owned_mut(asa, name)?.synchronizing = false;
        Ok(())
    }

    /// The registration of `name`, whoever holds it.
    pub fn get(&self, name: &str) -> Option<&Registered> {
        self.objectives.get(name)
    }

    /// The value served to synchronization requests for `name`, if it is being served.
    pub fn synch_value(&self, name: &str) -> Option<(Objective, Option<Value>)> {
        let r = self.objectives.get(name)?;
        r.synchronizing
            .then(|| (r.objective.clone(), r.objective.value.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asa_registration_rules() {
        let mut r = Registry::new(2, 10);
        let a = r.register_asa(AsaId(1), "Briggs").unwrap();
        assert!(matches!(
            r.register_asa(AsaId(2), "Briggs"),
            Err(GraspError::DupAsa)
        ));
        r.register_asa(AsaId(2), "Gray").unwrap();
        assert!(matches!(
            r.register_asa(AsaId(3), "Other"),
            Err(GraspError::AsaFull)
        ));
        assert!(matches!(
            r.deregister_asa(AsaId(2), "Briggs"),
            Err(GraspError::NotYourAsa)
        ));
        assert!(matches!(
            r.deregister_asa(AsaId(9), "Nobody"),
            Err(GraspError::NoAsa)
        ));
        r.deregister_asa(a, "Briggs").unwrap();
        assert!(matches!(r.check_asa(a), Err(GraspError::NoAsa)));
    }

    #[test]
    fn objective_registration_rules() {
        let mut r = Registry::new(10, 2);
        let a = r.register_asa(AsaId(1), "A").unwrap();
        let b = r.register_asa(AsaId(2), "B").unwrap();
        let both = Objective::new("X").neg(true).synch(true);
        assert!(matches!(
            r.register_obj(a, &both, RegisterOptions::default(), 0),
            Err(GraspError::NotBoth)
        ));
        let dry = Objective::new("X").dry(true);
        assert!(matches!(
            r.register_obj(a, &dry, RegisterOptions::default(), 0),
            Err(GraspError::NotDry)
        ));
        let ex3 = Objective::new("EX3").neg(true);
        r.register_obj(a, &ex3, RegisterOptions::default().overlap(true), 1000)
            .unwrap();
        // B may join only with overlap; A cannot register it twice.
        assert!(matches!(
            r.register_obj(b, &ex3, RegisterOptions::default(), 0),
            Err(GraspError::ObjReg)
        ));
        assert!(matches!(
            r.register_obj(a, &ex3, RegisterOptions::default().overlap(true), 0),
            Err(GraspError::ObjReg)
        ));
        r.register_obj(b, &ex3, RegisterOptions::default().overlap(true), 0)
            .unwrap();
        assert_eq!(r.get("EX3").unwrap().owners.len(), 2);
        assert_eq!(r.get("EX3").unwrap().port, 1000);
        r.register_obj(
            a,
            &Objective::new("EX2").synch(true),
            RegisterOptions::default(),
            0,
        )
        .unwrap();
        assert!(matches!(
            r.register_obj(a, &Objective::new("EX9"), RegisterOptions::default(), 0),
            Err(GraspError::ObjFull)
        ));
        assert!(matches!(
            r.listen_negotiate(a, &Objective::new("EX2").synch(true)),
            Err(GraspError::NotNeg)
        ));
        assert!(matches!(
            r.listen_synchronize(a, &ex3),
            Err(GraspError::NotSynch)
        ));
        assert!(matches!(
            r.deregister_obj(a, "EX7"),
            Err(GraspError::NotObj)
        ));
        // B deregistering: A still holds it.
        assert!(!r.deregister_obj(b, "EX3").unwrap());
        assert!(matches!(
            r.deregister_obj(b, "EX3"),
            Err(GraspError::NotYourObj)
        ));
        assert!(matches!(
            r.listen_negotiate(b, &ex3),
            Err(GraspError::NotYourObj)
        ));
        // Deregistering A takes its objectives.
        let mut gone = r.deregister_asa(a, "A").unwrap();
        gone.sort();
        assert_eq!(gone, vec!["EX2".to_owned(), "EX3".to_owned()]);
    }

    #[test]
    fn listening_makes_an_objective_discoverable_and_sets_the_synch_value() {
        let mut r = Registry::new(10, 10);
        let a = r.register_asa(AsaId(1), "A").unwrap();
        let ex2 = Objective::new("EX2").synch(true);
        r.register_obj(a, &ex2, RegisterOptions::default(), 5)
            .unwrap();
        assert!(!r.get("EX2").unwrap().discoverable);
        assert!(r.synch_value("EX2").is_none());
        r.listen_synchronize(a, &ex2.clone().value(Value::from(3)))
            .unwrap();
        assert!(r.get("EX2").unwrap().discoverable);
        assert_eq!(r.synch_value("EX2").unwrap().1, Some(Value::from(3)));
        r.stop_synchronize(a, "EX2").unwrap();
        assert!(r.synch_value("EX2").is_none());
    }
}
