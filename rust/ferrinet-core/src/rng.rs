//! SplitMix64: the seeded generator behind weight initialisation.
//!
//! Steele, Lea & Flood, "Fast splittable pseudorandom number generators" (OOPSLA 2014), in the
//! form of Vigna's public-domain `splitmix64.c`. Chosen because it is five lines that the
//! pure-Python reference repeats exactly, so the same seed gives the same weights in Rust, in the
//! reference and in any process, with no dependency.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The whole state: `SplitMix64::new(rng.state())` continues exactly where `rng` is (saved
    /// files keep it so that training resumes with the same shuffles and dropout masks).
    pub fn state(&self) -> u64 {
        self.state
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1): the top 53 bits scaled by 2^-53.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_splitmix64_test_values() {
        // Seed 1234567: the first outputs of Vigna's splitmix64.c, as quoted by several ports.
        let mut rng = SplitMix64::new(1234567);
        assert_eq!(rng.next_u64(), 6457827717110365317);
        assert_eq!(rng.next_u64(), 3203168211198807973);
        assert_eq!(rng.next_u64(), 9817491932198370423);
    }

    #[test]
    fn new_from_state_continues_the_sequence() {
        let mut rng = SplitMix64::new(42);
        rng.next_u64();
        let mut copy = SplitMix64::new(rng.state());
        assert_eq!(copy.next_u64(), rng.next_u64());
    }

    #[test]
    fn uniform_is_in_the_half_open_unit_interval() {
        let mut rng = SplitMix64::new(0);
        for _ in 0..10_000 {
            let u = rng.uniform();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
