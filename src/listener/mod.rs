//! The bundled webhook listener (under construction).
