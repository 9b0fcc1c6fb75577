//! Simulated TEE and fake signers. TODO
