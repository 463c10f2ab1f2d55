"""FHIR R4 (SDC): the questionnaire as a Questionnaire, QuestionnaireResponses as screenings."""
