"""Modal-less dialogs: settings and fine-tuning."""
