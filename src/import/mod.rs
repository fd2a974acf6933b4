//! Importers: other tools' configurations written as netconverge's desired state.

pub mod shorewall;
