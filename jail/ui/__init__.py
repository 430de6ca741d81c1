"""What a person sees: the dashboard and doctor."""
