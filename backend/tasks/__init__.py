"""Tasks: when a questionnaire is due, reminders, their delivery, and the tick that runs it all."""
