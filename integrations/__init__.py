"""CRM and helpdesk connectors, and the interface they implement."""
