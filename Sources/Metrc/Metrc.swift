// Metrc
